#include "models/registry.h"

#include <map>
#include <mutex>

#include "core/error.h"
#include "models/fashion.h"
#include "models/gpt.h"
#include "models/mlp.h"

namespace ringtrain {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelFactory> factories;
};

// Built-ins are added on first use rather than by static initialisers, so they are present
// even when the library is linked statically and nothing references their translation unit.
Registry& registry() {
  static Registry instance;
  static std::once_flag builtins;
  std::call_once(builtins, [] {
    instance.factories["fashion_mlp"] = [](const YAML::Node&) {
      return std::make_shared<FashionMlp>();
    };
    instance.factories["fashion_cnn"] = [](const YAML::Node&) {
      return std::make_shared<FashionCnn>();
    };
    instance.factories["gpt"] = makeGpt;
    instance.factories["mlp"] = makeMlp;
  });
  return instance;
}

}  // namespace

void registerModel(const std::string& name, ModelFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> registeredModels() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& entry : r.factories) names.push_back(entry.first);
  return names;
}

ModelPtr makeModel(const std::string& name, const YAML::Node& options) {
  ModelFactory factory;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& n : registeredModels()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown model '" + name + "' (model.name)",
                      "use one of: " + known + ", or register your own with registerModel()");
  }
  ModelPtr model = factory(options);
  if (!model) throw ModelError("the factory for model '" + name + "' returned no model");
  return model;
}

int64_t parameterCount(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

}  // namespace ringtrain
