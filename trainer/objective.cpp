#include "trainer/objective.h"

#include <sstream>

#include "core/error.h"
#include "trainer/config/config.h"

namespace ringtrain {

torch::Tensor crossEntropyPerPrediction(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}

torch::Tensor squaredErrorPerPrediction(const torch::Tensor& output, const torch::Tensor& targets) {
  if (output.numel() != targets.numel()) {
    std::ostringstream what;
    what << "train.loss mse: the model's output " << output.sizes()
         << " does not hold one value per target value (targets " << targets.sizes() << ")";
    throw DataError(
        what.str(),
        "give the model one output per target column (e.g. the mlp model's "
        "out_features: 1 for one target), or use train.loss: cross_entropy for classes");
  }
  const auto diff = output.reshape({-1}) - targets.reshape({-1}).to(output.scalar_type());
  return diff * diff;
}

Predictions predict(Model& model, const Objective& objective, const Batch& batch,
                    torch::Device device, const std::string& what, int rank) {
  try {
    Predictions result;
    result.output = model.forward(batch.modelInputs().to(device)).to(torch::kFloat32);
    result.targets = batch.targets.to(device);
    result.losses = objective.perPrediction(result.output, result.targets);
    return result;
  } catch (const c10::Error& e) {
    // LibTorch's message is its first line; the rest is a C++ backtrace.
    std::string reason = e.what_without_backtrace();
    reason = reason.substr(0, reason.find('\n'));
    throw DataError(
        "the model cannot take " + what + " (train.loss " + objective.name + "): " + reason,
        "check model.options against the data: the inputs' shape and features "
        "(e.g. the mlp model's in_features) and the outputs (out_features: the "
        "number of classes, or 1 per float target)",
        rank);
  }
}

Objective crossEntropyObjective() { return {"cross_entropy", crossEntropyPerPrediction, true}; }

Objective mseObjective() { return {"mse", squaredErrorPerPrediction, false}; }

Objective objectiveFor(const TrainConfig& train) {
  Objective objective = train.loss == "mse" ? mseObjective() : crossEntropyObjective();
  if (train.metric == "loss") objective.accuracy = false;
  if (train.metric == "accuracy" && !objective.accuracy) {
    throw ConfigError("train.metric: accuracy needs class targets, and train.loss: " +
                          objective.name + " does not have them",
                      "set train.metric: loss (or auto)");
  }
  return objective;
}

}  // namespace ringtrain
