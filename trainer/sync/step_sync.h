// The seam between the training loop and how its replicas agree: StepSync turns each rank's
// gradients of one optimizer step into the next parameters. The loop (trainer/trainer.h)
// runs forward and backward and calls it; a strategy decides how the gradients travel and
// who applies the update: trainer/allreduce/ (every rank averages and steps its optimizer)
// or trainer/ps/ (workers push gradients to parameter servers and pull parameters back).
// Modelled on flashlight's Reducer, widened from "reduce" to "reduce and update", and to the
// moments where the replicas must agree: the start, epoch ends and checkpoints, the run end.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/report/metrics.h"

namespace ringtrain {

class Timeline;

// What the end of a run reports beyond the loop's own figures, filled in by the strategy
// (the loop's rank 0 writes it to metrics.jsonl and prints `lines`).
struct RunReport {
  int64_t steps = 0;              // the run's last step
  double samples = 0.0;           // trained by this rank in this run
  double wallSeconds = 0.0;       // the loop's measure; a strategy may widen it
  double samplesPerSecond = 0.0;  // this rank's estimate; a strategy may count exactly
  std::vector<std::pair<std::string, double>> summaryFields;  // appended to "summary"
  std::string doneSuffix;                                     // appended to the "done:" line
  struct Record {
    std::string kind;
    std::vector<std::pair<std::string, double>> fields;
  };
  std::vector<Record> records;
  std::vector<std::string> lines;
};

class StepSync {
 public:
  virtual ~StepSync() = default;

  // Before the first step of the run (`step`: 0, or the step resumed at), after the
  // replicas were made equal: a strategy whose parameters live elsewhere pulls them here.
  virtual void start(int64_t step, bool resumed) = 0;

  // Before each micro-batch's backward of step `step`; `lastMicroBatch` is true for the
  // backward that completes the step's gradients (the others accumulate locally).
  virtual void prepareBackward(int64_t step, bool lastMicroBatch) = 0;

  // After the step's last backward: every replica holds the step's update when it returns.
  // `localLoss` is this rank's loss (to name the ranks whose loss was not finite). Adds the
  // time spent waiting for the other ranks and updating to `phases`. Returns false when the
  // update was skipped (non-finite gradients under train.on_nonfinite: skip).
  virtual bool finishStep(int64_t step, double localLoss, StepPhases& phases) = 0;

  // The replicas meet at `step`: every update before it is applied everywhere, so evaluation
  // and a checkpoint see one model. With `checkpoint`, state kept outside the replicas (a
  // parameter server's partition) is saved for `step` before this returns.
  virtual void meet(int64_t step, bool checkpoint) = 0;

  // After the last step, evaluation and checkpoint. Collective over every rank of the job;
  // adds what the strategy reports to `report`.
  virtual void finishRun(RunReport& report) = 0;

  // The communicator of the ranks that hold replicas: evaluation, metrics, straggler
  // detection and fingerprints run over it, and its rank 0 writes checkpoints.
  virtual Communicator& replicas() = 0;

  // What this rank is about to synchronise, in order, for the cross-rank model check.
  virtual std::vector<std::string> fingerprint(const torch::nn::Module& model) const = 0;

  // For the start-up line, e.g. "backend ring, 3 gradient bucket(s)".
  virtual std::string describe() const = 0;

  // Where finishStep records its spans (waiting, each bucket's collective, the update) while
  // the timeline records; null (the default) records nothing.
  void traceTo(Timeline* timeline) { timeline_ = timeline; }

 protected:
  Timeline* timeline_ = nullptr;
};

}  // namespace ringtrain
