// Model interface: a torch::nn::Module with a single-tensor forward. Built-in models
// register their submodules under the names the equivalent torch.nn module would use
// ("conv1", "fc2", ...) so that exported state_dicts load into PyTorch unchanged.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace ringtrain {

class Model : public torch::nn::Module {
 public:
  // Returns logits whose last dimension is the class (or vocabulary) dimension.
  virtual torch::Tensor forward(const torch::Tensor& input) = 0;
};

using ModelPtr = std::shared_ptr<Model>;

}  // namespace ringtrain
