// `mlp`: a multilayer perceptron over feature vectors, for tabular data (data.name: csv),
// classification or regression:
//
//   model: {name: mlp, options: {in_features: 8, hidden: [64, 64], out_features: 1}}
//
// Linear layers fc1 .. fcN with ReLU between them, named as a PyTorch class with attributes
// fc1, fc2, ... names them, so an exported state_dict loads into such a class unchanged.
#pragma once

#include <yaml-cpp/yaml.h>

#include <vector>

#include "models/model.h"

namespace ringtrain {

class Mlp : public Model {
 public:
  // hidden: the widths of the hidden layers, in order (may be empty: one linear layer).
  Mlp(int64_t inFeatures, std::vector<int64_t> hidden, int64_t outFeatures);
  // [batch, in_features] -> [batch, out_features]
  torch::Tensor forward(const Inputs& inputs) override;

 private:
  std::vector<torch::nn::Linear> layers_;
};

// model.options: in_features and out_features (required), hidden (a width or a list of
// widths; default [64]). Throws ConfigError for an unknown or invalid option.
ModelPtr makeMlp(const YAML::Node& options);

}  // namespace ringtrain
