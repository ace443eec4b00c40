// A batch's model inputs: one tensor (images, token ids) or several named tensors (a
// recommender's user and item ids, a text model's ids and attention mask), as a PyTorch
// model takes forward(x) or forward(**batch). Model::forward gets one of these; a tensor
// converts implicitly, so model->forward(x) reads as it does in PyTorch.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace ringtrain {

using NamedTensors = std::map<std::string, torch::Tensor>;

class Inputs {
 public:
  Inputs() = default;
  Inputs(torch::Tensor tensor);  // NOLINT(google-explicit-constructor): forward(x) as in PyTorch
  Inputs(NamedTensors named);    // NOLINT(google-explicit-constructor): forward({{"ids", x}})

  bool isNamed() const { return !named_.empty(); }
  // The one input tensor. Throws ModelError, naming the inputs there are, when the batch
  // holds named inputs (the model should read them with at()).
  const torch::Tensor& tensor() const;
  // The input called `name`. Throws ModelError naming the inputs there are (with a
  // suggestion for a typo) when there is none by that name.
  const torch::Tensor& at(const std::string& name) const;
  const NamedTensors& named() const { return named_; }
  std::vector<std::string> names() const;

  // Every tensor moved to `device` (a no-op for tensors already there).
  Inputs to(const torch::Device& device) const;

 private:
  torch::Tensor tensor_;
  NamedTensors named_;
};

}  // namespace ringtrain
