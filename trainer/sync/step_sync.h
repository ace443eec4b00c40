// The seam between the training loop and how its replicas agree: StepSync turns each rank's
// gradients of one optimizer step into the next parameters. The loop (trainer/trainer.h)
// runs forward and backward and calls it; a strategy (trainer/allreduce/, later
// trainer/ps/) decides how the gradients travel and who applies the update. Modelled on
// flashlight's Reducer, widened from "reduce" to "reduce and update".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/report/metrics.h"

namespace ringtrain {

class StepSync {
 public:
  virtual ~StepSync() = default;

  // Before each micro-batch's backward of step `step`; `lastMicroBatch` is true for the
  // backward that completes the step's gradients (the others accumulate locally).
  virtual void prepareBackward(int64_t step, bool lastMicroBatch) = 0;

  // After the step's last backward: every replica holds the step's update when it returns.
  // `localLoss` is this rank's loss (to name the ranks whose loss was not finite). Adds the
  // time spent waiting for the other ranks and updating to `phases`. Returns false when the
  // update was skipped (non-finite gradients under train.on_nonfinite: skip).
  virtual bool finishStep(int64_t step, double localLoss, StepPhases& phases) = 0;

  // The communicator of the ranks that hold replicas: evaluation, metrics, straggler
  // detection and fingerprints run over it, and its rank 0 writes checkpoints.
  virtual Communicator& replicas() = 0;

  // What this rank is about to synchronise, in order, for the cross-rank model check.
  virtual std::vector<std::string> fingerprint(const torch::nn::Module& model) const = 0;

  // For the start-up line, e.g. "backend ring, 3 gradient bucket(s)".
  virtual std::string describe() const = 0;
};

}  // namespace ringtrain
