// Built-in Fashion-MNIST classifiers. Submodule names match the equivalent torch.nn
// definitions (see tests/e2e/torch_models.py), so exported weights load unchanged:
//   fashion_mlp: fc1 784->256, fc2 256->128, fc3 128->10, ReLU between.
//   fashion_cnn: conv1 1->32 k3 p1, pool, conv2 32->64 k3 p1, pool, fc1 3136->128, fc2 128->10.
#pragma once

#include "models/model.h"

namespace ringtrain {

class FashionMlp : public Model {
 public:
  FashionMlp();
  torch::Tensor forward(const Inputs& inputs) override;

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};

class FashionCnn : public Model {
 public:
  FashionCnn();
  torch::Tensor forward(const Inputs& inputs) override;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

}  // namespace ringtrain
