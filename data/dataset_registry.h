// Dataset registry: maps the `data.name` of a config to a factory. Built-in datasets are
// added in dataset_registry.cpp; users add their own with registerDataset() before the
// trainer is built.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/dataset.h"
#include "data/split.h"

namespace ringtrain {

using DatasetFactory = std::function<DatasetPtr(const DataConfig& cfg, Split split)>;

// Adds or replaces the factory for `name`.
void registerDataset(const std::string& name, DatasetFactory factory);
// Builds cfg.name's dataset for `split`. Throws ConfigError naming the unknown dataset and
// listing the registered ones; DataError when the factory returns nothing.
DatasetPtr makeDataset(const DataConfig& cfg, Split split);
// Sorted names of the registered datasets.
std::vector<std::string> registeredDatasets();

}  // namespace ringtrain
