#include "trainer/checkpoint/inference.h"

#include <filesystem>

#include "core/error.h"
#include "models/registry.h"
#include "trainer/checkpoint/checkpoint.h"

namespace ringtrain {

LoadedCheckpoint loadForInference(const std::string& path,
                                  const std::vector<std::string>& overrides,
                                  const std::function<void(const std::string&)>& warn) {
  LoadedCheckpoint loaded;
  loaded.dir = resolveCheckpoint(path, warn);
  const auto configPath = (std::filesystem::path(loaded.dir) / "config.yaml").string();
  loaded.config = Config::fromYaml(readCheckpointConfig(loaded.dir), configPath, overrides);
  loaded.model = makeModel(loaded.config.model.name, loaded.config.model.options);
  loadCheckpoint(loaded.dir, *loaded.model, nullptr, false);
  loaded.model->eval();
  return loaded;
}

}  // namespace ringtrain
