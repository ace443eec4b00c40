// Model registry: maps the `model.name` of a config to a factory. Built-in models register
// themselves in registry.cpp; users add their own with registerModel() or the
// RINGTRAIN_REGISTER_MODEL macro before the trainer is built.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace ringtrain {

// `options` is the config's model.options map (may be null/empty).
using ModelFactory = std::function<ModelPtr(const YAML::Node& options)>;

void registerModel(const std::string& name, ModelFactory factory);
// Throws ConfigError naming the unknown model and listing the registered ones.
ModelPtr makeModel(const std::string& name, const YAML::Node& options = YAML::Node());
std::vector<std::string> registeredModels();

// Total number of elements over all parameters.
int64_t parameterCount(const torch::nn::Module& module);

namespace detail {
struct ModelRegistrar {
  ModelRegistrar(const std::string& name, ModelFactory factory) {
    registerModel(name, std::move(factory));
  }
};
}  // namespace detail

}  // namespace ringtrain

#define RINGTRAIN_CONCAT_INNER(a, b) a##b
#define RINGTRAIN_CONCAT(a, b) RINGTRAIN_CONCAT_INNER(a, b)
// RINGTRAIN_REGISTER_MODEL("my_model", [](const YAML::Node& opts) { ... return ModelPtr; });
#define RINGTRAIN_REGISTER_MODEL(name, factory)                                                    \
  static ::ringtrain::detail::ModelRegistrar RINGTRAIN_CONCAT(ringtrainModelRegistrar_, __LINE__)( \
      name, factory)
