// The all-reduce strategy of the training loop (distributed.mode: allreduce): every rank
// holds a replica and its own optimizer. A step's gradients are averaged across ranks by the
// GradientSynchronizer (bucketed, overlapped with backward), then every rank clips, checks
// the norm for non-finite values and steps its optimizer alike, so the replicas stay
// bitwise identical. With distributed.zero: 1 the optimizer state is sharded instead
// (ShardedOptimizer, zero_optimizer.h): the gradients are reduce-scattered, each rank steps
// its shard, and the parameters are all-gathered; the replicas stay identical all the same.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/allreduce/grad_sync.h"
#include "trainer/allreduce/zero_optimizer.h"
#include "trainer/config/config.h"
#include "trainer/sync/step_sync.h"

namespace ringtrain {

class AllreduceSync : public StepSync {
 public:
  // `optimizer` updates `parameters` (a replica's, on its training device) and outlives this.
  // `totalSteps` drives the learning-rate schedule; `warn` prints a warning (rank 0).
  AllreduceSync(const Config& cfg, Communicator& comm, std::vector<torch::Tensor> parameters,
                torch::optim::Optimizer& optimizer, int64_t totalSteps,
                std::function<void(const std::string&)> warn);

  // Every replica already holds the same parameters and updates them itself: nothing to
  // pull at the start, no outside state to meet or report.
  void start(int64_t, bool) override {}
  void prepareBackward(int64_t step, bool lastMicroBatch) override;
  bool finishStep(int64_t step, double localLoss, StepPhases& phases) override;
  // Before a checkpoint under ZeRO-1, gathers the optimizer's shards into `optimizer`.
  void meet(int64_t step, bool checkpoint) override;
  // Reports the optimizer state's bytes per rank.
  void finishRun(RunReport& report) override;
  Communicator& replicas() override { return comm_; }
  std::vector<std::string> fingerprint(const torch::nn::Module& model) const override;
  std::string describe() const override;

  const GradientSynchronizer& gradients() const { return *gradSync_; }

 private:
  // Returns false when the update was skipped (non-finite gradient norm, on_nonfinite: skip).
  bool applyUpdate(int64_t step, double localLoss);
  // The global gradient norm, clipped to train.grad_clip_norm where that is set.
  double clippedGradientNorm();
  // The last step's bucket collectives into the timeline (which records).
  void traceBuckets();

  const Config& cfg_;
  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  torch::optim::Optimizer& optimizer_;
  int64_t totalSteps_;
  std::function<void(const std::string&)> warn_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<GradientSynchronizer> gradSync_;
  std::unique_ptr<ShardedOptimizer> zero_;  // distributed.zero: 1
};

}  // namespace ringtrain
