#include "spirals.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace example {

Spirals::Spirals(int64_t count, uint64_t seed, double noise) {
  // A generator of its own, so the data does not depend on (or disturb) torch's global seed.
  auto generator = at::detail::createCPUGenerator(seed);
  auto t = torch::rand({count}, generator) * 3.0 + 0.25;  // radius, ~1 turn per arm
  labels_ = torch::arange(count, torch::kLong).remainder(2);
  auto angle = t * M_PI + labels_.to(torch::kFloat32) * M_PI;
  points_ = torch::stack({t * torch::cos(angle), t * torch::sin(angle)}, 1) +
            noise * torch::randn({count, 2}, generator);
}

ringtrain::Batch Spirals::get(const std::vector<int64_t>& indices) const {
  auto index = torch::tensor(indices, torch::kLong);
  return {points_.index_select(0, index), labels_.index_select(0, index)};
}

SpiralMlp::SpiralMlp(int64_t hidden) {
  // Names as torch.nn would give them, so an export loads into the same PyTorch module.
  fc1_ = register_module("fc1", torch::nn::Linear(2, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, hidden));
  fc3_ = register_module("fc3", torch::nn::Linear(hidden, 2));
}

torch::Tensor SpiralMlp::forward(const ringtrain::Inputs& inputs) {
  const torch::Tensor& input = inputs.tensor();
  auto x = torch::relu(fc1_->forward(input));
  x = torch::relu(fc2_->forward(x));
  return fc3_->forward(x);
}

}  // namespace example
