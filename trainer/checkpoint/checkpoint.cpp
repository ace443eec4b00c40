#include "trainer/checkpoint/checkpoint.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/faults.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/manifest.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

const char* const kManifest = "MANIFEST";
// What a checkpoint holds, in the order written; its MANIFEST lists each.
const std::vector<std::string> kFiles = {"model.pt", "optimizer.pt", "rng.pt", "state.yaml",
                                         "config.yaml"};
const char* const kStepPrefix = "step-";

void writeTextFile(const std::string& path, const std::string& text) {
  FileWriter out(path);
  out.write(text.data(), text.size());
  out.finish();
}

// Streams a LibTorch archive straight into a FileWriter, so a failed write reports errno.
// The callback never reports a short write to LibTorch: its zip writer cannot unwind from
// one (1.13 terminates in its destructor); the bytes after a failure are dropped instead
// and the saved errno is thrown once the archive is done.
void saveArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  FileWriter out(path);
  archive.save_to([&out](const void* data, size_t size) -> size_t {
    out.tryWrite(data, size);
    return size;
  });
  out.finish();  // throws the first write's errno, if any
}

std::string stepDirName(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%08lld", kStepPrefix, static_cast<long long>(step));
  return name;
}

std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string shapeOf(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void removeQuietly(const fs::path& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

}  // namespace

std::string stableHash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64-bit offset basis
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string moduleFingerprint(const torch::nn::Module& module) {
  std::ostringstream s;
  for (const auto& p : module.named_parameters()) {
    s << p.key() << ':' << p.value().sizes() << ':' << p.value().scalar_type() << ';';
  }
  for (const auto& b : module.named_buffers()) {
    s << b.key() << ':' << b.value().sizes() << ':' << b.value().scalar_type() << ';';
  }
  return stableHash(s.str());
}

CheckpointStore::CheckpointStore(std::string runDir)
    : runDir_(std::move(runDir)), checkpointDir_((fs::path(runDir_) / "checkpoints").string()) {}

int64_t checkpointStep(const std::string& dir) {
  const auto name = fs::path(dir).filename().string();
  if (name.rfind(kStepPrefix, 0) != 0) return -1;
  const auto digits = name.substr(std::strlen(kStepPrefix));
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(checkpointDir_, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpointDir_, ec)) {
    const int64_t step = checkpointStep(entry.path().string());
    if (step >= 0 && entry.is_directory(ec)) found.emplace_back(step, entry.path().string());
  }
  // By step number, not by name: a run past 10^8 steps gets longer names.
  std::sort(found.begin(), found.end());
  std::vector<std::string> dirs;
  for (auto& f : found) dirs.push_back(std::move(f.second));
  return dirs;
}

std::string CheckpointStore::save(const torch::nn::Module& model,
                                  const torch::optim::Optimizer& optimizer,
                                  const TrainingState& state, const std::string& configYaml,
                                  int keepLast,
                                  const std::function<void(const std::string&)>& warn) {
  const fs::path finalDir = fs::path(checkpointDir_) / stepDirName(state.step);
  const fs::path tmpDir = fs::path(checkpointDir_) / ("." + stepDirName(state.step) + ".tmp");
  const fs::path oldDir = fs::path(checkpointDir_) / ("." + stepDirName(state.step) + ".old");
  try {
    fs::create_directories(checkpointDir_);
    // Hidden leftovers of writes that crashed: never valid, never listed.
    for (const auto& entry : fs::directory_iterator(checkpointDir_)) {
      const auto name = entry.path().filename().string();
      if (name.rfind(std::string(".") + kStepPrefix, 0) == 0) removeQuietly(entry.path());
    }
    fs::create_directory(tmpDir);

    torch::serialize::OutputArchive modelArchive;
    for (const auto& p : model.named_parameters()) modelArchive.write(p.key(), p.value());
    for (const auto& b : model.named_buffers()) modelArchive.write(b.key(), b.value(), true);
    saveArchive(modelArchive, (tmpDir / "model.pt").string());

    torch::serialize::OutputArchive optimizerArchive;
    optimizer.save(optimizerArchive);
    saveArchive(optimizerArchive, (tmpDir / "optimizer.pt").string());

    torch::serialize::OutputArchive rngArchive;
    rngArchive.write("cpu", at::detail::getDefaultCPUGenerator().get_state(), true);
    saveArchive(rngArchive, (tmpDir / "rng.pt").string());

    YAML::Emitter yaml;
    yaml.SetDoublePrecision(17);
    yaml << YAML::BeginMap;
    yaml << YAML::Key << "step" << YAML::Value << state.step;
    yaml << YAML::Key << "epoch" << YAML::Value << state.epoch;
    yaml << YAML::Key << "step_in_epoch" << YAML::Value << state.stepInEpoch;
    yaml << YAML::Key << "world_size" << YAML::Value << state.worldSize;
    yaml << YAML::Key << "micro_batch_samples" << YAML::Value << state.microBatchSamples;
    yaml << YAML::Key << "total_steps" << YAML::Value << state.totalSteps;
    yaml << YAML::Key << "learning_rate" << YAML::Value << state.learningRate;
    yaml << YAML::Key << "model_name" << YAML::Value << state.modelName;
    yaml << YAML::Key << "model_fingerprint" << YAML::Value << state.modelFingerprint;
    yaml << YAML::Key << "config_hash" << YAML::Value << state.configHash;
    yaml << YAML::Key << "best_accuracy" << YAML::Value << state.bestAccuracy;
    yaml << YAML::EndMap;
    writeTextFile((tmpDir / "state.yaml").string(), std::string(yaml.c_str()) + "\n");
    writeTextFile((tmpDir / "config.yaml").string(), configYaml);

    processFaults().trigger(FaultPoint::CheckpointWrite, 0, state.step);

    // Every file above is fsync'ed by FileWriter::finish; the manifest comes last.
    writeManifest(tmpDir.string(), kFiles);
    syncDirectory(tmpDir.string());

    // Re-writing an existing step (after resuming from an older checkpoint): move the old
    // one aside rather than deleting it first, so a crash in between loses nothing valid.
    std::error_code ec;
    const bool replacing = fs::exists(finalDir, ec);
    if (replacing) fs::rename(finalDir, oldDir);
    fs::rename(tmpDir, finalDir);
    syncDirectory(checkpointDir_);
    if (replacing) removeQuietly(oldDir);
  } catch (const CheckpointError& e) {
    removeQuietly(tmpDir);
    throw CheckpointError("cannot write checkpoint " + finalDir.string() + ": " + e.what(),
                          e.hint());
  } catch (const std::exception& e) {
    removeQuietly(tmpDir);
    std::string what = firstLine(e.what());
    std::error_code ec;
    const auto space = fs::space(checkpointDir_, ec);
    if (!ec) what += " (" + std::to_string(space.available >> 20) + " MiB free there)";
    throw CheckpointError("cannot write checkpoint " + finalDir.string() + ": " + what,
                          "check free space and permissions of the run directory; the "
                          "previous checkpoints are intact");
  }

  // Retention, only now that the new checkpoint is complete.
  int kept = 1;  // the new one
  const auto all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const int64_t step = checkpointStep(*it);
    if (step == state.step) continue;
    if (step > state.step) {
      if (warn) {
        warn("removing checkpoint " + *it + ": it is newer than step " +
             std::to_string(state.step) +
             " that this run just saved, so it belongs to a run "
             "that was resumed from an older checkpoint");
      }
      removeQuietly(*it);
      continue;
    }
    std::error_code ec;
    const bool complete = fs::exists(fs::path(*it) / kManifest, ec);
    if (complete && kept < std::max(keepLast, 1)) {
      ++kept;
    } else {
      removeQuietly(*it);
    }
  }
  return finalDir.string();
}

void verifyCheckpoint(const std::string& dir) {
  verifyManifestFiles(dir, readManifest(dir, kFiles));
}

std::optional<std::string> CheckpointStore::latestValid(
    const std::function<void(const std::string&)>& warn) const {
  auto all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verifyCheckpoint(*it);
      return *it;
    } catch (const CheckpointError& e) {
      if (warn) warn(std::string("skipping invalid checkpoint: ") + e.what());
    }
  }
  return std::nullopt;
}

std::string resolveCheckpoint(const std::string& path,
                              const std::function<void(const std::string&)>& warn) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    throw CheckpointError("checkpoint path " + path + " is not a directory",
                          "pass a checkpoint directory or a run directory");
  }
  if (fs::exists(fs::path(path) / kManifest, ec) || checkpointStep(path) >= 0) {
    verifyCheckpoint(path);
    return path;
  }
  const CheckpointStore store(path);
  const auto latest = store.latestValid(warn);
  if (!latest) {
    if (store.list().empty()) {
      throw CheckpointError("no checkpoint in " + path,
                            "pass a run directory that holds checkpoints/step-*, or a "
                            "checkpoint directory");
    }
    throw CheckpointError("no valid checkpoint in " + path +
                              ": every one is incomplete or "
                              "corrupt (see the warnings above)",
                          "start a new run without --resume, or restore a checkpoint from a "
                          "backup");
  }
  return *latest;
}

TrainingState readTrainingState(const std::string& dir) {
  TrainingState state;
  try {
    const auto node = YAML::Load(readVerifiedFile(dir, "state.yaml"));
    state.step = node["step"].as<int64_t>();
    state.epoch = node["epoch"].as<int64_t>();
    state.stepInEpoch = node["step_in_epoch"].as<int64_t>();
    state.worldSize = node["world_size"].as<int64_t>();
    state.microBatchSamples = node["micro_batch_samples"].as<int64_t>(0);
    state.totalSteps = node["total_steps"].as<int64_t>(0);
    state.learningRate = node["learning_rate"].as<double>(0.0);
    state.modelName = node["model_name"].as<std::string>();
    state.modelFingerprint = node["model_fingerprint"].as<std::string>();
    state.configHash = node["config_hash"].as<std::string>();
    state.bestAccuracy = node["best_accuracy"].as<double>(0.0);
  } catch (const YAML::Exception& e) {
    throw CheckpointError("cannot read " + dir + "/state.yaml: " + e.what());
  }
  if (state.step < 0 || state.epoch < 0 || state.stepInEpoch < 0 || state.worldSize < 1 ||
      state.microBatchSamples < 0 || state.totalSteps < 0) {
    throw CheckpointError("checkpoint " + dir +
                          "/state.yaml holds an impossible value (a negative step or epoch, "
                          "or a world size below 1)");
  }
  return state;
}

std::string readCheckpointConfig(const std::string& dir) {
  return readVerifiedFile(dir, "config.yaml");
}

namespace {

// An archive read from bytes that were checked against the MANIFEST; the bytes outlive it.
struct VerifiedArchive {
  std::string bytes;
  torch::serialize::InputArchive archive;
};

void loadArchive(const std::string& dir, const std::string& file, VerifiedArchive& into) {
  into.bytes = readVerifiedFile(dir, file);
  into.archive.load_from(into.bytes.data(), into.bytes.size());
}

std::string describeMismatch(torch::serialize::InputArchive& archive,
                             const torch::nn::Module& model) {
  std::vector<std::string> expected;
  const auto check = [&](const std::string& name, const torch::Tensor& mine,
                         bool buffer) -> std::string {
    expected.push_back(name);
    torch::Tensor saved;
    if (!archive.try_read(name, saved, buffer)) {
      return std::string(buffer ? "buffer " : "parameter ") + name + " " + shapeOf(mine) +
             " of this model is not in the checkpoint";
    }
    if (!saved.sizes().equals(mine.sizes())) {
      return name + " is " + shapeOf(saved) + " in the checkpoint but " + shapeOf(mine) +
             " in this model";
    }
    if (saved.scalar_type() != mine.scalar_type()) {
      return name + " is " + c10::toString(saved.scalar_type()) + " in the checkpoint but " +
             c10::toString(mine.scalar_type()) + " in this model";
    }
    return {};
  };
  for (const auto& p : model.named_parameters()) {
    if (auto d = check(p.key(), p.value(), false); !d.empty()) return d;
  }
  for (const auto& b : model.named_buffers()) {
    if (auto d = check(b.key(), b.value(), true); !d.empty()) return d;
  }
  for (const auto& key : archive.keys()) {
    if (std::find(expected.begin(), expected.end(), key) == expected.end()) {
      return "the checkpoint has " + key + ", which this model lacks";
    }
  }
  return {};
}

}  // namespace

std::string describeModelMismatch(const std::string& dir, const torch::nn::Module& model) {
  VerifiedArchive modelFile;
  try {
    loadArchive(dir, "model.pt", modelFile);
  } catch (const CheckpointError& e) {
    return std::string("cannot read its model.pt: ") + e.what();
  } catch (const c10::Error& e) {
    return "cannot read its model.pt: " + firstLine(e.what());
  }
  return describeMismatch(modelFile.archive, model);
}

void loadCheckpoint(const std::string& dir, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, bool restoreRng) {
  // Every file is parsed from the bytes its MANIFEST entry was checked against, so a
  // checkpoint changed (or swapped) after it was chosen is refused, never half-loaded.
  try {
    VerifiedArchive modelFile;
    loadArchive(dir, "model.pt", modelFile);
    // copy_ would broadcast a [1] tensor into a [256] parameter without complaint.
    if (const auto mismatch = describeMismatch(modelFile.archive, model); !mismatch.empty()) {
      throw CheckpointError("checkpoint " + dir + " does not fit this model: " + mismatch,
                            "use the model config the checkpoint was written with");
    }
    torch::NoGradGuard noGrad;
    for (auto& p : model.named_parameters()) {
      torch::Tensor loaded;
      modelFile.archive.read(p.key(), loaded);
      p.value().copy_(loaded);
    }
    for (auto& b : model.named_buffers()) {
      torch::Tensor loaded;
      modelFile.archive.read(b.key(), loaded, true);
      b.value().copy_(loaded);
    }
    if (optimizer) {
      VerifiedArchive optimizerFile;
      loadArchive(dir, "optimizer.pt", optimizerFile);
      optimizer->load(optimizerFile.archive);
    }
    if (restoreRng) {
      VerifiedArchive rngFile;
      loadArchive(dir, "rng.pt", rngFile);
      torch::Tensor rng;
      rngFile.archive.read("cpu", rng, true);
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
  } catch (const c10::Error& e) {
    throw CheckpointError("cannot load checkpoint " + dir + ": " + firstLine(e.what()),
                          "the checkpoint does not match this model or is damaged");
  }
}

}  // namespace ringtrain
