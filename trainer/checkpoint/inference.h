// Loading a finished checkpoint for evaluation, prediction and export: rebuilds the model
// from the resolved config stored inside the checkpoint and loads its weights.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/model.h"
#include "trainer/config/config.h"

namespace ringtrain {

struct LoadedCheckpoint {
  std::string dir;  // the checkpoint directory actually used
  Config config;
  ModelPtr model;
};

// `path` is a checkpoint directory or a run directory (its newest valid checkpoint).
// `overrides` ("section.key=value") apply on top of the stored config, e.g. data.dir.
LoadedCheckpoint loadForInference(const std::string& path,
                                  const std::vector<std::string>& overrides,
                                  const std::function<void(const std::string&)>& warn);

}  // namespace ringtrain
