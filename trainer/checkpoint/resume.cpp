#include "trainer/checkpoint/resume.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/config/config.h"

namespace ringtrain {

namespace {

// One flow-style line per value, so nested maps (model.options) compare as a whole.
std::string text(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "(unset)";
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

std::optional<std::string> chooseCheckpoint(const std::string& runDir, const std::string& resume,
                                            const std::function<void(const std::string&)>& log,
                                            int rank) {
  const auto warn = [&](const std::string& m) { log("warning: " + m); };
  if (resume != "auto") return resolveCheckpoint(resume, warn);
  const CheckpointStore store(runDir);
  auto dir = store.latestValid(warn);
  const auto all = store.list();
  if (!dir && !all.empty()) {
    throw CheckpointError("--resume auto: none of the " + std::to_string(all.size()) +
                              " checkpoints in " + store.directory() +
                              " is valid (see the warnings above)",
                          "restore one from a backup and pass it with --resume DIR, or move "
                          "them away to start from scratch",
                          rank);
  }
  if (!dir) log("no checkpoint in " + runDir + " yet; starting from scratch");
  return dir;
}

}  // namespace

std::optional<std::string> agreeOnResume(Communicator& comm, const std::string& runDir,
                                         const std::string& resume,
                                         const std::function<void(const std::string&)>& log,
                                         std::chrono::milliseconds timeout) {
  if (resume.empty()) return std::nullopt;
  // Every rank reads the checkpoint itself, so they must all have picked the same one; a
  // rank that could not pick says so (-2) instead of leaving the others waiting.
  constexpr int64_t kNone = -1;
  constexpr int64_t kFailed = -2;
  std::optional<std::string> dir;
  std::exception_ptr failure;
  int64_t step = kNone;
  try {
    dir = chooseCheckpoint(runDir, resume, log, comm.rank());
    if (dir) step = readTrainingState(*dir).step;
  } catch (...) {
    failure = std::current_exception();
    step = kFailed;
  }
  auto mine = torch::tensor({step}, torch::kInt64);
  auto chosen = torch::empty({comm.size()}, torch::kInt64);
  comm.allgather(mine, chosen)->wait(timeout);
  if (failure) std::rethrow_exception(failure);
  for (int r = 0; r < comm.size(); ++r) {
    if (chosen[r].item<int64_t>() == kFailed) {
      throw CheckpointError("rank " + std::to_string(r) +
                                " could not open the checkpoint to resume from (its line says why)",
                            "", comm.rank());
    }
  }
  for (int r = 1; r < comm.size(); ++r) {
    if (chosen[r].item<int64_t>() != chosen[0].item<int64_t>()) {
      throw CheckpointError(
          "ranks chose different checkpoints to resume from: rank 0 step " +
              std::to_string(chosen[0].item<int64_t>()) + ", rank " + std::to_string(r) + " step " +
              std::to_string(chosen[r].item<int64_t>()) + " (-1: none)",
          "put the run directory on a file system that every rank shares", comm.rank());
    }
  }
  return dir;
}

std::vector<std::string> configDifferences(const std::string& oldYaml, const std::string& newYaml) {
  std::vector<std::string> differences;
  try {
    checkYamlBounds(oldYaml, "the checkpoint's config.yaml");
    const YAML::Node before = YAML::Load(oldYaml);
    const YAML::Node after = YAML::Load(newYaml);
    const auto compare = [&](const YAML::Node& a, const YAML::Node& b, bool aIsNew) {
      for (const auto& section : a) {
        const auto name = section.first.as<std::string>();
        for (const auto& key : section.second) {
          const auto k = key.first.as<std::string>();
          const YAML::Node other = b[name] ? b[name][k] : YAML::Node();
          const std::string mine = text(key.second);
          const std::string theirs = text(other);
          if (aIsNew && mine != theirs) {
            differences.push_back(name + "." + k + ": " + theirs + " -> " + mine);
          } else if (!aIsNew && !other.IsDefined()) {
            differences.push_back(name + "." + k + ": " + mine + " -> (unset)");
          }
        }
      }
    };
    compare(after, before, true);
    compare(before, after, false);
  } catch (const YAML::Exception& e) {
    differences.push_back(std::string("(cannot compare the configs: ") + e.what() + ")");
  } catch (const ConfigError& e) {
    differences.push_back(std::string("(cannot compare the configs: ") + e.what() + ")");
  }
  return differences;
}

ResumedBatch resumedMicroBatch(const std::string& dir, const TrainingState& saved,
                               int64_t batchSize, int worldSize, int rank) {
  int64_t savedBatchSize = 0;
  try {
    const std::string text = readCheckpointConfig(dir);
    checkYamlBounds(text, dir + "/config.yaml");
    savedBatchSize = YAML::Load(text)["data"]["batch_size"].as<int64_t>();
  } catch (const YAML::Exception& e) {
    throw CheckpointError("cannot read data.batch_size from " + dir + "/config.yaml: " + e.what(),
                          "resume from another checkpoint", rank);
  } catch (const ConfigError& e) {
    throw CheckpointError(std::string("cannot read data.batch_size: ") + e.what(),
                          "resume from another checkpoint", rank);
  }
  if (savedBatchSize < 1) {
    throw CheckpointError("checkpoint " + dir + " has data.batch_size " +
                              std::to_string(savedBatchSize) + " in its config.yaml",
                          "resume from another checkpoint", rank);
  }
  // Format 1 checkpoints were always written at world_size x data.batch_size.
  const int64_t savedMicro =
      saved.microBatchSamples > 0 ? saved.microBatchSamples : saved.worldSize * savedBatchSize;
  if (batchSize == savedBatchSize) return {savedMicro, false};
  const int64_t requested = batchSize * worldSize;
  if (requested == savedMicro) return {savedMicro, false};
  if (saved.stepInEpoch != 0) {
    throw CheckpointError(
        "data.batch_size changed from " + std::to_string(savedBatchSize) + " to " +
            std::to_string(batchSize) + " (a global batch of " + std::to_string(requested) +
            " samples instead of " + std::to_string(savedMicro) + ") while " + dir +
            " is in the middle of epoch " + std::to_string(saved.epoch) + " (sampler step " +
            std::to_string(saved.stepInEpoch) + "): its data cursor counts steps of " +
            std::to_string(savedMicro) + " samples",
        "keep data.batch_size " + std::to_string(savedBatchSize) +
            " (ranks then share the checkpoint's global batch), or resume from a checkpoint "
            "written at an epoch's end",
        rank);
  }
  return {requested, true};
}

void discardMetricsAfter(const std::string& metricsPath, int64_t step) {
  std::ifstream in(metricsPath, std::ios::binary);
  if (!in) return;
  std::string kept;
  std::string line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const auto at = line.find("\"step\":");
    if (at != std::string::npos && std::atoll(line.c_str() + at + 7) > step) {
      dropped = true;
      continue;
    }
    kept += line + '\n';
  }
  in.close();
  if (!dropped) return;
  AtomicFile out(metricsPath);
  out.write(kept.data(), kept.size());
  out.commit();
}

}  // namespace ringtrain
