// Checkpoints: one directory per checkpoint under <runDir>/checkpoints/step-NNNNNNNN.
//
//   model.pt      parameters and buffers by name (torch::serialize archive)
//   optimizer.pt  optimizer state
//   rng.pt        RNG state of the default CPU generator
//   state.yaml    step (which is also the LR-schedule position: the schedule is a pure
//                 function of it), epoch, data cursor, world size, config and model
//                 fingerprints
//   config.yaml   the resolved config of the run (eval/export/predict rebuild the model)
//   MANIFEST      size and CRC-32 of every file above, then a CRC-32 of the manifest
//                 itself; written last (trainer/checkpoint/manifest.h: a reader opens only
//                 the plain files it lists, never through a symbolic link, and parses the
//                 very bytes it checked)
//
// A checkpoint is written into a hidden temporary directory, every file and the directory
// are fsync'ed, then it is renamed into place: a reader never sees a partial checkpoint.
// The MANIFEST is what makes a checkpoint valid (like llm.c's DONE marker); one without it,
// or whose files do not match their manifest entries, is skipped with a warning.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ringtrain {

struct TrainingState {
  int64_t step = 0;         // optimizer steps completed
  int64_t epoch = 0;        // epoch of the next batch
  int64_t stepInEpoch = 0;  // data cursor: sampler step of the next batch within `epoch`
  int64_t worldSize = 1;
  // Samples of one sampler step over all ranks (the global micro-batch), which elastic
  // resume keeps at another world size. 0 in checkpoints of format 1, which predate it:
  // there it is world_size x the checkpoint config's data.batch_size.
  int64_t microBatchSamples = 0;
  int64_t totalSteps = 0;     // the LR schedule's horizon when the checkpoint was written
  double learningRate = 0.0;  // the LR of the last step, for information
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

  // Writes a checkpoint for `state.step` atomically. Only once it is complete, removes
  // older checkpoints beyond the newest `keepLast` (counting the new one) and any newer
  // than `state.step` (left by a timeline this run abandoned by resuming from an older
  // checkpoint; `--resume auto` must not jump back to them), reporting removals of the
  // latter through `warn`. Returns the checkpoint's directory. Throws CheckpointError
  // naming the cause; the previous checkpoints stay intact.
  std::string save(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer,
                   const TrainingState& state, const std::string& configYaml, int keepLast,
                   const std::function<void(const std::string&)>& warn = nullptr);

  // Newest checkpoint whose manifest verifies; invalid ones are reported through `warn`,
  // each naming the directory and what is wrong with it.
  std::optional<std::string> latestValid(const std::function<void(const std::string&)>& warn) const;

  // Paths of every step-* directory, oldest (lowest step) first.
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

// The step a checkpoint directory is named after (step-00000040 -> 40); -1 if none.
int64_t checkpointStep(const std::string& dir);

// state.yaml and config.yaml of the checkpoint in `dir`, checked against its MANIFEST.
TrainingState readTrainingState(const std::string& dir);
std::string readCheckpointConfig(const std::string& dir);
// Loads parameters/buffers (and the optimizer and RNG state when given) from `dir`. Throws
// CheckpointError if a tensor is missing or has another shape or dtype than in `model`.
void loadCheckpoint(const std::string& dir, torch::nn::Module& model,
                    torch::optim::Optimizer* optimizer, bool restoreRng);

// Empty if `model` can load the checkpoint in `dir`; otherwise says what differs first,
// e.g. "fc1.weight is [256, 784] in the checkpoint but [512, 784] in this model".
std::string describeModelMismatch(const std::string& dir, const torch::nn::Module& model);

}  // namespace ringtrain
