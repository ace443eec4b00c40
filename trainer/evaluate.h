// Evaluation of a model on a whole dataset, sharded across ranks: each rank evaluates a
// contiguous slice (no sample dropped or seen twice) and the sums are all-reduced.
#pragma once

#include <chrono>

#include "collectives/communicator.h"
#include "data/dataset.h"
#include "models/model.h"

namespace ringtrain {

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy per prediction
  double accuracy = 0.0;  // fraction of correct predictions, in [0, 1]
  int64_t samples = 0;
};

// Cross-entropy of every prediction: `logits` [..., classes], `targets` [...] -> [N] losses.
torch::Tensor crossEntropyPerPrediction(const torch::Tensor& logits, const torch::Tensor& targets);

EvalResult evaluateModel(Model& model, const Dataset& dataset, int64_t batchSize,
                         Communicator& comm, std::chrono::milliseconds timeout);

}  // namespace ringtrain
