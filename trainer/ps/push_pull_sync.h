// The parameter-server strategy of the training loop (distributed.mode: ps), on a worker:
// a step's gradients are pushed to the servers that own their elements (while backward
// still runs, with distributed.overlap) and the updated parameters pulled back
// (trainer/ps/worker.h); the servers apply the update (trainer/ps/server.h). Under asp and
// ssp every push is applied alone, so the worker clips its own gradient and checks its norm
// for non-finite values; under bsp the servers clip the average, as all-reduce mode does.
//
// The replicas meet through the servers (Worker::sync): at the start (every worker pulls the
// servers' parameters), at epoch ends and checkpoints (the servers save their partitions
// first), and at the run end, where every rank's figures are gathered for the report.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/ps/cluster.h"
#include "trainer/ps/worker.h"
#include "trainer/sync/step_sync.h"

namespace ringtrain::ps {

class PushPullSync : public StepSync {
 public:
  // `parameters` are the replica's (CPU), in registration order; `cluster` outlives this.
  PushPullSync(const Config& cfg, Cluster& cluster, std::vector<torch::Tensor> parameters,
               int64_t totalSteps);

  void start(int64_t step, bool resumed) override;
  void prepareBackward(int64_t step, bool lastMicroBatch) override;
  bool finishStep(int64_t step, double localLoss, StepPhases& phases) override;
  void meet(int64_t step, bool checkpoint) override;
  void finishRun(RunReport& report) override;
  Communicator& replicas() override { return cluster_.workers(); }
  std::vector<std::string> fingerprint(const torch::nn::Module& model) const override;
  std::string describe() const override;

 private:
  const Config& cfg_;
  Cluster& cluster_;
  std::vector<torch::Tensor> parameters_;
  int64_t totalSteps_;
  bool clipOnWorker_;
  Worker worker_;
};

}  // namespace ringtrain::ps
