// Evaluation of a model on a whole dataset, sharded across ranks: each rank evaluates a
// contiguous slice (no sample dropped or seen twice) and the sums are all-reduced.
#pragma once

#include <chrono>
#include <string>

#include "collectives/communicator.h"
#include "data/dataset.h"
#include "models/model.h"
#include "trainer/objective.h"

namespace ringtrain {

struct EvalResult {
  double loss = 0.0;      // mean loss per prediction (the objective's)
  double accuracy = 0.0;  // fraction of correct predictions, in [0, 1]; NaN: not measured
  int64_t samples = 0;
  bool hasAccuracy() const { return accuracy == accuracy; }
};

EvalResult evaluateModel(Model& model, const Dataset& dataset, int64_t batchSize,
                         Communicator& comm, std::chrono::milliseconds timeout,
                         const Objective& objective = crossEntropyObjective());

// Runs the model and the objective on the first few samples of `dataset` (evaluation mode,
// no gradient, on the model's device), so that a model that cannot take the data is refused
// before the first step, not inside it or after an epoch's training. Throws DataError naming
// `what` (see predict). A label past the model's classes later in the data is found where it
// is used, with the same error.
void checkModelTakesData(Model& model, const Dataset& dataset, const Objective& objective,
                         const std::string& what, int rank);

// The progress line of an evaluation: "epoch 2  step 1874  test loss 0.3121  test accuracy
// 88.52%" (no accuracy part when it was not measured).
std::string evalLine(int64_t epoch, int64_t step, const EvalResult& eval);
// The outcome in the run's last line: "best test accuracy 90.10%, final 89.97%", or
// "final test loss 0.0123" when accuracy was not measured.
std::string outcomeText(double bestAccuracy, const EvalResult& finalEval);

}  // namespace ringtrain
