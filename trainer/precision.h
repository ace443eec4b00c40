// train.precision: the dtype of the forward pass and the loss. Master weights, gradients and
// the gradient buckets stay float32 (distributed.compression alone narrows what is sent).
#pragma once

#include <torch/torch.h>

#include <string>

namespace ringtrain {

// Runs the ops of its scope under LibTorch's autocast for `device` when `precision` is
// "bf16" (matrix products and convolutions in bfloat16, reductions and the loss's
// log-softmax in float32), and does nothing for "fp32". Restores the thread's previous
// autocast state when it goes, so scopes nest.
class AutocastScope {
 public:
  AutocastScope(const std::string& precision, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  torch::DeviceType device_ = torch::kCPU;
  bool wasEnabled_ = false;
  torch::ScalarType previousDtype_ = torch::kBFloat16;
};

}  // namespace ringtrain
