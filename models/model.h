// Model interface: a torch::nn::Module whose forward takes a batch's Inputs: one tensor
// (inputs.tensor()) or several named ones (inputs.at("ids")). Built-in models
// register their submodules under the names the equivalent torch.nn module would use
// ("conv1", "fc2", ...) so that exported state_dicts load into PyTorch unchanged.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/inputs.h"

namespace ringtrain {

class Model : public torch::nn::Module {
 public:
  // Returns logits whose last dimension is the class (or vocabulary) dimension.
  // A tensor converts to Inputs, so model->forward(x) works for single-input models.
  virtual torch::Tensor forward(const Inputs& inputs) = 0;
};

using ModelPtr = std::shared_ptr<Model>;

}  // namespace ringtrain
