// Support for resuming a run: what a resumed run tells the user about its config, and the
// roll-back of run outputs written after the checkpoint it resumes from.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/checkpoint/checkpoint.h"

namespace ringtrain {

// Collective over `comm` (every rank of the job, before any split into roles): the
// checkpoint the job resumes from, the same on every rank, or none. `resume` is "" (none),
// "auto" (the newest valid checkpoint under runDir; none if there is no checkpoint yet, an
// error if there are some and none is valid) or a checkpoint or run directory. Throws
// CheckpointError on every rank when one rank cannot open its choice or ranks chose
// differently (a run directory that is not shared). `log` prints a line (rank 0's).
std::optional<std::string> agreeOnResume(Communicator& comm, const std::string& runDir,
                                         const std::string& resume,
                                         const std::function<void(const std::string&)>& log,
                                         std::chrono::milliseconds timeout);

// The global micro-batch (samples of one sampler step over all ranks) a run resumed from
// the checkpoint `dir` (whose state.yaml holds `saved`) trains with, `worldSize` ranks and
// `batchSize` = data.batch_size. Elastic resume: while data.batch_size is the checkpoint's, the
// checkpoint's global micro-batch is kept whatever the world size, so the (epoch, step) cursor
// stays exact; a changed data.batch_size asks for worldSize x batchSize instead, which is accepted
// only at an epoch's start (mid-epoch the cursor's steps would cover other samples):
// CheckpointError otherwise, naming both ways out.
struct ResumedBatch {
  int64_t microBatchSamples = 0;
  bool changed = false;  // it differs from the checkpoint's
};
ResumedBatch resumedMicroBatch(const std::string& dir, const TrainingState& saved,
                               int64_t batchSize, int worldSize, int rank);

// Keys whose values differ between two resolved configs (Config::toYaml text), one
// "section.key: old -> new" per key, in the order of `newYaml`.
std::vector<std::string> configDifferences(const std::string& oldYaml, const std::string& newYaml);

// Rolls metrics.jsonl back to a checkpoint: drops the records of steps after `step` (written
// by the attempt that crashed after the checkpoint), so a resumed run's file reads as if it
// had never stopped. Atomic. A missing file is left alone.
void discardMetricsAfter(const std::string& metricsPath, int64_t step);

}  // namespace ringtrain
