// Checkpoints: one directory per checkpoint under <runDir>/checkpoints/step-NNNNNNNN.
//
//   model.pt      parameters and buffers by name (torch::serialize archive)
//   optimizer.pt  optimizer state
//   rng.pt        RNG state of the default CPU generator
//   state.yaml    step, epoch, data cursor, world size, config and model fingerprints
//   config.yaml   the resolved config of the run (eval/export/predict rebuild the model)
//   MANIFEST      size and CRC-32 of every file above; written last
//
// A checkpoint is written into a hidden temporary directory, every file and the directory
// are fsync'ed, then it is renamed into place: a reader never sees a partial checkpoint.
// The MANIFEST is what makes a checkpoint valid (like llm.c's DONE marker); one whose
// files do not match their manifest entries is skipped with a warning.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ringtrain {

struct TrainingState {
  int64_t step = 0;          // optimizer steps completed
  int64_t epoch = 0;         // epoch of the next batch
  int64_t stepInEpoch = 0;   // data cursor: sampler step of the next batch within `epoch`
  int64_t worldSize = 1;
  std::string modelName;
  std::string modelFingerprint;  // hash of parameter names, shapes and dtypes
  std::string configHash;
  double bestAccuracy = 0.0;
};

// FNV-1a 64-bit, printed as 16 hex digits: stable across platforms and runs.
std::string stableHash(const std::string& text);
// Hash of (name, shape, dtype) of every parameter and buffer, in registration order.
std::string moduleFingerprint(const torch::nn::Module& module);

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string runDir);

  const std::string& directory() const { return checkpointDir_; }

  // Writes a checkpoint for `state.step` atomically, then deletes all but the newest
  // `keepLast` valid checkpoints. Returns the checkpoint's directory. Throws
  // CheckpointError (the previous checkpoints stay intact).
  std::string save(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer,
                   const TrainingState& state, const std::string& configYaml, int keepLast);

  // Newest checkpoint whose manifest verifies; invalid ones are reported through `warn`.
  std::optional<std::string> latestValid(const std::function<void(const std::string&)>& warn) const;

  // Paths of every step-* directory, oldest first.
  std::vector<std::string> list() const;

 private:
  std::string runDir_;
  std::string checkpointDir_;
};

// Throws CheckpointError naming the file if the manifest is missing or does not match.
void verifyCheckpoint(const std::string& dir);

// Resolves DIR given on the command line: a checkpoint directory, or a run directory
// (meaning its newest valid checkpoint).
std::string resolveCheckpoint(const std::string& path,
                              const std::function<void(const std::string&)>& warn);

TrainingState readTrainingState(const std::string& dir);
// Loads parameters/buffers (and the optimizer and RNG state when given) from `dir`.
void loadCheckpoint(const std::string& dir, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, bool restoreRng);

}  // namespace ringtrain
