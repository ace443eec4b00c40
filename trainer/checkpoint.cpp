#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/error.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

const char* const kManifest = "MANIFEST";
const char* const kFiles[] = {"model.pt", "optimizer.pt", "rng.pt", "state.yaml", "config.yaml"};

// RAII file descriptor, used only to fsync files and directories.
class FileDescriptor {
 public:
  FileDescriptor(const std::string& path, int flags) : fd_(::open(path.c_str(), flags)) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void fsyncPath(const std::string& path, bool directory) {
  FileDescriptor fd(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    throw CheckpointError("cannot fsync " + path, "check the file system holding the run directory");
  }
}

struct FileDigest {
  uint64_t size = 0;
  uint32_t crc = 0;
};

FileDigest digestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("cannot read " + path);
  FileDigest digest;
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = in.gcount();
    if (got <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<uInt>(got));
    digest.size += static_cast<uint64_t>(got);
  }
  digest.crc = static_cast<uint32_t>(crc);
  return digest;
}

void writeTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw CheckpointError("cannot write " + path, "is the disk full or read-only?");
}

std::string stepDirName(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return name;
}

}  // namespace

std::string stableHash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
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

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::string> dirs;
  std::error_code ec;
  if (!fs::is_directory(checkpointDir_, ec)) return dirs;
  for (const auto& entry : fs::directory_iterator(checkpointDir_, ec)) {
    const auto name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0) dirs.push_back(entry.path().string());
  }
  std::sort(dirs.begin(), dirs.end());  // zero-padded step numbers sort by step
  return dirs;
}

std::string CheckpointStore::save(const torch::nn::Module& model,
                                  const torch::optim::Optimizer& optimizer,
                                  const TrainingState& state,
                                  const std::string& configYaml, int keepLast) {
  const fs::path finalDir = fs::path(checkpointDir_) / stepDirName(state.step);
  const fs::path tmpDir = fs::path(checkpointDir_) / ("." + stepDirName(state.step) + ".tmp");
  try {
    fs::create_directories(checkpointDir_);
    fs::remove_all(tmpDir);
    fs::create_directory(tmpDir);

    torch::serialize::OutputArchive modelArchive;
    for (const auto& p : model.named_parameters()) modelArchive.write(p.key(), p.value());
    for (const auto& b : model.named_buffers()) modelArchive.write(b.key(), b.value(), true);
    modelArchive.save_to((tmpDir / "model.pt").string());

    torch::serialize::OutputArchive optimizerArchive;
    optimizer.save(optimizerArchive);
    optimizerArchive.save_to((tmpDir / "optimizer.pt").string());

    torch::serialize::OutputArchive rngArchive;
    rngArchive.write("cpu", at::detail::getDefaultCPUGenerator().get_state(), true);
    rngArchive.save_to((tmpDir / "rng.pt").string());

    YAML::Emitter yaml;
    yaml << YAML::BeginMap << YAML::Key << "step" << YAML::Value << state.step << YAML::Key
         << "epoch" << YAML::Value << state.epoch << YAML::Key << "step_in_epoch" << YAML::Value
         << state.stepInEpoch << YAML::Key << "world_size" << YAML::Value << state.worldSize
         << YAML::Key << "model_name" << YAML::Value << state.modelName << YAML::Key
         << "model_fingerprint" << YAML::Value << state.modelFingerprint << YAML::Key
         << "config_hash" << YAML::Value << state.configHash << YAML::Key << "best_accuracy"
         << YAML::Value << state.bestAccuracy << YAML::EndMap;
    writeTextFile((tmpDir / "state.yaml").string(), std::string(yaml.c_str()) + "\n");
    writeTextFile((tmpDir / "config.yaml").string(), configYaml);

    std::ostringstream manifest;
    for (const char* file : kFiles) {
      const auto path = (tmpDir / file).string();
      fsyncPath(path, false);
      const auto digest = digestFile(path);
      manifest << file << ' ' << digest.size << ' ' << digest.crc << '\n';
    }
    writeTextFile((tmpDir / kManifest).string(), manifest.str());
    fsyncPath((tmpDir / kManifest).string(), false);
    fsyncPath(tmpDir.string(), true);

    fs::remove_all(finalDir);
    fs::rename(tmpDir, finalDir);
    fsyncPath(checkpointDir_, true);
  } catch (const CheckpointError&) {
    std::error_code ignored;
    fs::remove_all(tmpDir, ignored);
    throw;
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmpDir, ignored);
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw CheckpointError("cannot write checkpoint " + finalDir.string() + ": " + what,
                          "check free space and permissions of the run directory");
  }

  // Retention: only after the new checkpoint is complete, drop the oldest beyond keepLast.
  auto all = list();
  if (keepLast > 0 && static_cast<int>(all.size()) > keepLast) {
    for (size_t i = 0; i + keepLast < all.size(); ++i) {
      std::error_code ignored;
      fs::remove_all(all[i], ignored);
    }
  }
  return finalDir.string();
}

void verifyCheckpoint(const std::string& dir) {
  const auto manifestPath = (fs::path(dir) / kManifest).string();
  std::ifstream in(manifestPath);
  if (!in) throw CheckpointError("checkpoint " + dir + " has no MANIFEST (incomplete write)");
  std::string file;
  uint64_t size = 0;
  uint32_t crc = 0;
  int entries = 0;
  while (in >> file >> size >> crc) {
    const auto path = (fs::path(dir) / file).string();
    std::error_code ec;
    if (!fs::exists(path, ec)) throw CheckpointError("checkpoint file " + path + " is missing");
    const auto digest = digestFile(path);
    if (digest.size != size || digest.crc != crc) {
      throw CheckpointError("checkpoint file " + path + " is corrupt (size or checksum mismatch)");
    }
    ++entries;
  }
  if (entries == 0) throw CheckpointError("checkpoint " + dir + " has an empty MANIFEST");
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
  if (fs::exists(fs::path(path) / kManifest, ec)) {
    verifyCheckpoint(path);
    return path;
  }
  const auto latest = CheckpointStore(path).latestValid(warn);
  if (!latest) {
    throw CheckpointError("no valid checkpoint in " + path,
                          "every checkpoint there is missing, incomplete or corrupt; start a new "
                          "run without --resume");
  }
  return *latest;
}

TrainingState readTrainingState(const std::string& dir) {
  TrainingState state;
  try {
    const auto node = YAML::LoadFile((fs::path(dir) / "state.yaml").string());
    state.step = node["step"].as<int64_t>();
    state.epoch = node["epoch"].as<int64_t>();
    state.stepInEpoch = node["step_in_epoch"].as<int64_t>();
    state.worldSize = node["world_size"].as<int64_t>();
    state.modelName = node["model_name"].as<std::string>();
    state.modelFingerprint = node["model_fingerprint"].as<std::string>();
    state.configHash = node["config_hash"].as<std::string>();
    state.bestAccuracy = node["best_accuracy"].as<double>(0.0);
  } catch (const YAML::Exception& e) {
    throw CheckpointError("cannot read " + dir + "/state.yaml: " + e.what());
  }
  return state;
}

void loadCheckpoint(const std::string& dir, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, bool restoreRng) {
  try {
    torch::serialize::InputArchive modelArchive;
    modelArchive.load_from((fs::path(dir) / "model.pt").string());
    torch::NoGradGuard noGrad;
    for (auto& p : model.named_parameters()) {
      torch::Tensor loaded;
      modelArchive.read(p.key(), loaded);
      p.value().copy_(loaded);
    }
    for (auto& b : model.named_buffers()) {
      torch::Tensor loaded;
      modelArchive.read(b.key(), loaded, true);
      b.value().copy_(loaded);
    }
    if (optimizer) {
      torch::serialize::InputArchive optimizerArchive;
      optimizerArchive.load_from((fs::path(dir) / "optimizer.pt").string());
      optimizer->load(optimizerArchive);
    }
    if (restoreRng) {
      torch::serialize::InputArchive rngArchive;
      rngArchive.load_from((fs::path(dir) / "rng.pt").string());
      torch::Tensor rng;
      rngArchive.read("cpu", rng, true);
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
  } catch (const c10::Error& e) {
    std::string what = e.what();
    throw CheckpointError("cannot load checkpoint " + dir + ": " + what.substr(0, what.find('\n')),
                          "the checkpoint does not match this model or is damaged");
  }
}

}  // namespace ringtrain
