#include "trainer/evaluate.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "data/sharding.h"

namespace ringtrain {

namespace {

// [GPU, backend nccl] The replica may live on its GPU while a dataset's batches are CPU
// tensors; .to() is a no-op on the CPU.
torch::Device deviceOf(Model& model) {
  const auto parameters = model.parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

}  // namespace

void checkModelTakesData(Model& model, const Dataset& dataset, const Objective& objective,
                         const std::string& what, int rank) {
  constexpr int64_t kProbeSamples = 4;
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < std::min(kProbeSamples, dataset.size()); ++i) indices.push_back(i);
  if (indices.empty()) return;
  torch::NoGradGuard noGrad;
  const bool wasTraining = model.is_training();
  model.eval();
  predict(model, objective, dataset.get(indices), deviceOf(model), what, rank);
  model.train(wasTraining);
}

EvalResult evaluateModel(Model& model, const Dataset& dataset, int64_t batchSize,
                         Communicator& comm, std::chrono::milliseconds timeout,
                         const Objective& objective) {
  torch::NoGradGuard noGrad;
  const bool wasTraining = model.is_training();
  model.eval();
  const auto [begin, end] = evalRange(dataset.size(), comm.rank(), comm.size());
  const torch::Device device = deviceOf(model);
  double lossSum = 0.0;
  double correct = 0.0;
  double predictions = 0.0;
  for (int64_t start = begin; start < end; start += batchSize) {
    const int64_t stop = std::min(end, start + batchSize);
    std::vector<int64_t> indices;
    indices.reserve(static_cast<size_t>(stop - start));
    for (int64_t i = start; i < stop; ++i) indices.push_back(i);
    const Batch batch = dataset.get(indices);
    const auto [output, targets, losses] =
        predict(model, objective, batch, device, "the test data", comm.rank());
    lossSum += losses.sum().item<double>();
    if (objective.accuracy) correct += output.argmax(-1).eq(targets).sum().item<double>();
    predictions += static_cast<double>(losses.numel());
  }
  auto totals = torch::tensor({lossSum, correct, predictions, static_cast<double>(end - begin)},
                              torch::kFloat64);
  comm.allreduce(totals, "allreduce(evaluation totals)")->wait(timeout);
  model.train(wasTraining);
  EvalResult result;
  const double count = std::max(1.0, totals[2].item<double>());
  result.loss = totals[0].item<double>() / count;
  result.accuracy = objective.accuracy ? totals[1].item<double>() / count
                                       : std::numeric_limits<double>::quiet_NaN();
  result.samples = static_cast<int64_t>(totals[3].item<double>());
  return result;
}

std::string evalLine(int64_t epoch, int64_t step, const EvalResult& eval) {
  char line[160];
  std::snprintf(line, sizeof line, "epoch %lld  step %lld  test loss %.4f",
                static_cast<long long>(epoch), static_cast<long long>(step), eval.loss);
  std::string text = line;
  if (eval.hasAccuracy()) {
    std::snprintf(line, sizeof line, "  test accuracy %.2f%%", 100.0 * eval.accuracy);
    text += line;
  }
  return text;
}

std::string outcomeText(double bestAccuracy, const EvalResult& finalEval) {
  char text[120];
  if (finalEval.hasAccuracy()) {
    std::snprintf(text, sizeof text, "best test accuracy %.2f%%, final %.2f%%",
                  100.0 * bestAccuracy, 100.0 * finalEval.accuracy);
  } else {
    std::snprintf(text, sizeof text, "final test loss %.4f", finalEval.loss);
  }
  return text;
}

}  // namespace ringtrain
