#include "models/fashion.h"

namespace ringtrain {

namespace nn = torch::nn;

FashionMlp::FashionMlp() {
  fc1_ = register_module("fc1", nn::Linear(784, 256));
  fc2_ = register_module("fc2", nn::Linear(256, 128));
  fc3_ = register_module("fc3", nn::Linear(128, 10));
}

torch::Tensor FashionMlp::forward(const Inputs& inputs) {
  const torch::Tensor& input = inputs.tensor();
  auto x = input.reshape({input.size(0), 784});
  x = torch::relu(fc1_->forward(x));
  x = torch::relu(fc2_->forward(x));
  return fc3_->forward(x);
}

FashionCnn::FashionCnn() {
  conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)));
  conv2_ = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  fc1_ = register_module("fc1", nn::Linear(64 * 7 * 7, 128));
  fc2_ = register_module("fc2", nn::Linear(128, 10));
}

torch::Tensor FashionCnn::forward(const Inputs& inputs) {
  const torch::Tensor& input = inputs.tensor();
  auto x = torch::max_pool2d(torch::relu(conv1_->forward(input)), 2);
  x = torch::max_pool2d(torch::relu(conv2_->forward(x)), 2);
  x = x.flatten(1);
  x = torch::relu(fc1_->forward(x));
  return fc2_->forward(x);
}

}  // namespace ringtrain
