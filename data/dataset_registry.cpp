#include "data/dataset_registry.h"

#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "data/csv.h"
#include "data/fashion_mnist.h"
#include "data/token_shards.h"

namespace ringtrain {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, DatasetFactory> factories;
};

// Built-ins are added on first use rather than by static initialisers, so they are present
// even when the library is linked statically and nothing references this translation unit.
Registry& registry() {
  static Registry instance;
  static std::once_flag builtins;
  std::call_once(builtins, [] {
    instance.factories["fashion_mnist"] = [](const DataConfig& cfg, Split split) {
      return std::make_shared<const FashionMnist>(cfg.dir, split, cfg.mean, cfg.std);
    };
    instance.factories["tokens"] = makeTokenDataset;
    instance.factories["csv"] = makeCsvDataset;
  });
  return instance;
}

}  // namespace

void registerDataset(const std::string& name, DatasetFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> registeredDatasets() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& entry : r.factories) names.push_back(entry.first);
  return names;
}

DatasetPtr makeDataset(const DataConfig& cfg, Split split) {
  DatasetFactory factory;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(cfg.name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& n : registeredDatasets()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown dataset '" + cfg.name + "' (data.name); known datasets: " + known,
                      "set data.name to one of the known datasets, or register your own with "
                      "registerDataset() before building the trainer");
  }
  DatasetPtr dataset = factory(cfg, split);
  if (!dataset) {
    throw DataError("the factory for dataset '" + cfg.name + "' returned no dataset");
  }
  // An evaluation over no samples would report a loss and accuracy of nothing as if measured.
  if (split == Split::Test && dataset->size() == 0) {
    throw DataError("the test split of dataset '" + cfg.name + "' (data.dir " + cfg.dir +
                        ") has no samples: there is nothing to evaluate on",
                    "give the test split at least one sample");
  }
  return dataset;
}

}  // namespace ringtrain
