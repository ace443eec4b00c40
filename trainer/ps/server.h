// A parameter server: owns one partition of the parameters (see ps_layout.h) and the
// optimizer state for it, and applies the workers' gradients under ps.consistency:
//
//   bsp  waits until every active worker pushed step t, averages the gradients (in worker
//        order, each scaled by 1/count as all-reduce mode does) and steps once. With several
//        servers, the squared gradient norms are summed across servers so that clipping and
//        the non-finite check see the global norm, exactly as in all-reduce mode.
//   asp  applies each push on arrival and answers its worker at once.
//   ssp  applies each push on arrival; the answer to a worker that has finished c steps,
//        which lets it start step c, is held until every active worker has finished at least
//        c - staleness steps. The slowest worker is never held, so this cannot deadlock.
//
// A worker that sent Done no longer counts: a bsp step completes with the pushes of the
// workers still active, and the ssp minimum clock ignores it. That is how unequal shard
// lengths end without hanging anyone. serve() returns once every worker is done.
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/error.h"
#include "trainer/config/config.h"
#include "trainer/ps/layout.h"
#include "trainer/ps/protocol.h"
#include "trainer/ps/server_stats.h"

namespace ringtrain::ps {

// Writes the partition and its optimizer state for `step` (called at a checkpoint Sync,
// before any worker gets its answer).
using CheckpointWriter = std::function<void(int64_t step, const torch::nn::Module& partition,
                                            const torch::optim::Optimizer& optimizer)>;

class Server {
 public:
  // `psComm` spans the world in world order; `serverComm` the servers only. Both outlive
  // the server.
  Server(const Config& cfg, const Roles& roles, const Layout& layout, MPI_Comm psComm,
         MPI_Comm serverComm);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void setCheckpointWriter(CheckpointWriter writer) { writer_ = std::move(writer); }

  // The partition as a module (one parameter, "partition") and its optimizer: what a
  // checkpoint holds. After loading them, call markLoaded() so that no Init is expected.
  torch::nn::Module& partitionModule() { return *module_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  torch::Tensor partition() const { return partition_; }
  void markLoaded() { initialised_ = true; }

  // Serves until every worker has sent Done. Throws TimeoutError when no message arrives
  // within distributed.timeout_s, TrainingError on a protocol violation or a non-finite
  // gradient with train.on_nonfinite: abort.
  ServerStats serve();

 private:
  void handle(int worker, const MPI_Status& status);
  void repost(int worker);
  void reply(int worker, int64_t step);
  void tryCompleteBspStep();
  void tryCompleteSync();
  void releaseHeldReplies();
  bool mayStart(int worker) const;
  int64_t minActiveClock() const;
  void apply(const torch::Tensor& gradient, int64_t step, int64_t totalSteps);
  double globalSquaredNorm(const torch::Tensor& gradient);
  std::string describeWait() const;
  TrainingError protocolError(const std::string& message) const;

  Config cfg_;
  Roles roles_;
  MPI_Comm psComm_;
  MPI_Comm serverComm_;
  int rank_;
  int serverIndex_;
  int numWorkers_;
  int64_t elements_;
  PoliteWaiter waiter_;
  CheckpointWriter writer_;

  torch::Tensor partition_;
  std::shared_ptr<torch::nn::Module> module_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  torch::Tensor average_;  // bsp: the averaged gradient
  bool initialised_ = false;

  std::vector<Message> inbox_;   // per worker
  std::vector<Message> outbox_;  // per worker
  std::vector<MPI_Request> receives_;
  std::vector<MPI_Request> sends_;

  std::vector<bool> active_;
  std::vector<int64_t> clock_;   // steps each worker has finished (pushed)
  std::vector<bool> holdsPush_;  // bsp: the worker's push waits in its inbox
  std::vector<bool> heldReply_;  // ssp: the worker waits for the staleness bound
  std::vector<bool> syncing_;
  std::vector<int64_t> syncStep_;
  int64_t syncFlags_ = 0;
  int64_t totalSteps_ = 0;  // from the latest push, for the schedule
  ServerStats stats_;
};

}  // namespace ringtrain::ps
