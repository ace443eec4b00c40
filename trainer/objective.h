// The objective: what training minimises (the loss) and what evaluation reports (the loss,
// and accuracy where targets are classes). Chosen by train.loss and train.metric, or handed
// to the Trainer from C++ (RunOptions::objective) as any callable.
//
//   train.loss: cross_entropy   outputs [..., classes], targets [...] int64 class indices
//   train.loss: mse             outputs with one value per target value, targets of any
//                               floating (or integer) dtype, compared as float32
//   train.metric: auto          accuracy for cross_entropy, loss only for anything else
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "data/dataset.h"
#include "models/model.h"

namespace ringtrain {

struct TrainConfig;

struct Objective {
  std::string name;  // for messages: "cross_entropy", "mse", or the user's own
  // The loss of every prediction of a batch as a flat [N] tensor: training minimises their
  // mean, evaluation reports their mean over the test set. Gets the model's output in float32.
  std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& targets)>
      perPrediction;
  // Also report accuracy: the fraction of predictions whose argmax over the last dimension
  // equals the target class.
  bool accuracy = false;
};

// Cross-entropy of every prediction: `logits` [..., classes], `targets` [...] -> [N] losses.
torch::Tensor crossEntropyPerPrediction(const torch::Tensor& logits, const torch::Tensor& targets);
// Squared error of every target value. Throws DataError when the output does not hold one
// value per target value.
torch::Tensor squaredErrorPerPrediction(const torch::Tensor& output, const torch::Tensor& targets);

Objective crossEntropyObjective();  // with accuracy
Objective mseObjective();           // loss only

// The model's output for a batch (float32), the batch's targets on the output's device, and
// the objective's loss of every prediction.
struct Predictions {
  torch::Tensor output;
  torch::Tensor targets;
  torch::Tensor losses;
};
// Runs the forward pass and the objective on `batch`, moved to `device`. LibTorch's refusal
// (inputs of a shape the model does not take, a class index past its outputs, targets of
// another shape) becomes a DataError naming `what` ("the test data, evaluation after step
// 40"), LibTorch's reason and the model options to check, on `rank`.
Predictions predict(Model& model, const Objective& objective, const Batch& batch,
                    torch::Device device, const std::string& what, int rank);

// train.loss and train.metric. Throws ConfigError for accuracy with a loss other than
// cross_entropy (its targets are not classes).
Objective objectiveFor(const TrainConfig& train);

}  // namespace ringtrain
