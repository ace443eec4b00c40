#include "models/mlp.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/names.h"

namespace ringtrain {

Mlp::Mlp(int64_t inFeatures, std::vector<int64_t> hidden, int64_t outFeatures) {
  int64_t width = inFeatures;
  hidden.push_back(outFeatures);
  for (size_t i = 0; i < hidden.size(); ++i) {
    layers_.push_back(
        register_module("fc" + std::to_string(i + 1), torch::nn::Linear(width, hidden[i])));
    width = hidden[i];
  }
}

torch::Tensor Mlp::forward(const Inputs& inputs) {
  const torch::Tensor& input = inputs.tensor();
  auto x = input.reshape({input.size(0), -1});
  for (size_t i = 0; i < layers_.size(); ++i) {
    x = layers_[i]->forward(x);
    if (i + 1 < layers_.size()) x = torch::relu(x);
  }
  return x;
}

namespace {

int64_t positiveOption(const YAML::Node& node, const std::string& key) {
  int64_t value = 0;
  try {
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    throw ConfigError("model.options." + key + " of model 'mlp' must be an integer",
                      "write e.g. " + key + ": 64");
  }
  if (value < 1) {
    throw ConfigError(
        "model.options." + key + " of model 'mlp' must be at least 1, got " + std::to_string(value),
        "layer widths count units");
  }
  return value;
}

}  // namespace

ModelPtr makeMlp(const YAML::Node& options) {
  const std::vector<std::string> known{"in_features", "hidden", "out_features"};
  const std::string example = "write e.g. options: {in_features: 8, hidden: [64], out_features: 1}";
  if (!options || !options.IsMap()) {
    throw ConfigError("model 'mlp' needs model.options with in_features and out_features", example);
  }
  for (const auto& entry : options) {
    const auto key = entry.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw ConfigError(
          "unknown option model.options." + key + " for model 'mlp'" + didYouMean(key, known),
          "valid options: " + joinNames(known));
    }
  }
  for (const char* required : {"in_features", "out_features"}) {
    if (!options[required]) {
      throw ConfigError(std::string("model 'mlp' needs model.options.") + required, example);
    }
  }
  std::vector<int64_t> hidden{64};
  if (const auto node = options["hidden"]) {
    hidden.clear();
    if (node.IsSequence()) {
      for (const auto& width : node) hidden.push_back(positiveOption(width, "hidden"));
    } else {
      hidden.push_back(positiveOption(node, "hidden"));
    }
  }
  return std::make_shared<Mlp>(positiveOption(options["in_features"], "in_features"), hidden,
                               positiveOption(options["out_features"], "out_features"));
}

}  // namespace ringtrain
