#include "trainer/evaluate.h"

#include <algorithm>

#include "data/sharding.h"

namespace ringtrain {

torch::Tensor crossEntropyPerPrediction(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}

EvalResult evaluateModel(Model& model, const Dataset& dataset, int64_t batchSize,
                         Communicator& comm, std::chrono::milliseconds timeout) {
  torch::NoGradGuard noGrad;
  const bool wasTraining = model.is_training();
  model.eval();
  const auto [begin, end] = evalRange(dataset.size(), comm.rank(), comm.size());
  // [GPU, backend nccl] The replica lives on its GPU while the dataset's batches are CPU
  // tensors; .to() is a no-op on the CPU.
  const auto parameters = model.parameters();
  const torch::Device device =
      parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  double lossSum = 0.0;
  double correct = 0.0;
  double predictions = 0.0;
  for (int64_t start = begin; start < end; start += batchSize) {
    const int64_t stop = std::min(end, start + batchSize);
    std::vector<int64_t> indices;
    indices.reserve(static_cast<size_t>(stop - start));
    for (int64_t i = start; i < stop; ++i) indices.push_back(i);
    const Batch batch = dataset.get(indices);
    auto logits = model.forward(batch.inputs.to(device));
    const auto targets = batch.targets.to(device);
    lossSum += crossEntropyPerPrediction(logits, targets).sum().item<double>();
    correct += logits.argmax(-1).eq(targets).sum().item<double>();
    predictions += static_cast<double>(targets.numel());
  }
  auto totals = torch::tensor({lossSum, correct, predictions, static_cast<double>(end - begin)},
                              torch::kFloat64);
  comm.allreduce(totals, "allreduce(evaluation totals)")->wait(timeout);
  model.train(wasTraining);
  EvalResult result;
  const double count = std::max(1.0, totals[2].item<double>());
  result.loss = totals[0].item<double>() / count;
  result.accuracy = totals[1].item<double>() / count;
  result.samples = static_cast<int64_t>(totals[3].item<double>());
  return result;
}

}  // namespace ringtrain
