// The ranks of a parameter-server job (distributed.mode: ps) and how they talk: which ranks
// serve and which train (Roles), which parameter elements each server owns (Layout), the
// MPI communicators of the protocol (Comms) and, on workers, the Communicator that spans the
// workers only (the training loop's replicas: evaluation, metrics, checkpoint hand-shake).
//
// Built collectively over MPI_COMM_WORLD by every rank with the same config and model; it
// refuses, on every rank, a layout or ps settings that differ between ranks (the protocol's
// messages would not line up).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/config/config.h"
#include "trainer/ps/layout.h"
#include "trainer/ps/protocol.h"

namespace ringtrain::ps {

class Cluster {
 public:
  Cluster(const Config& cfg, const torch::nn::Module& model, int worldRank);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  int worldRank() const { return rank_; }
  bool isServer() const { return roles_.isServer(rank_); }
  // Index among the workers (0: the one that writes the run's outputs), or -1 on a server.
  int workerIndex() const { return roles_.workerIndex(rank_); }
  const Roles& roles() const { return roles_; }
  const Layout& layout() const { return layout_; }
  MPI_Comm psComm() const { return comms_.ps.get(); }
  MPI_Comm roleComm() const { return comms_.role.get(); }
  // Workers only: the Communicator of the workers, in worker order.
  Communicator& workers();

 private:
  void checkSameLayoutEverywhere(const Config& cfg);

  int rank_;
  Roles roles_;
  Layout layout_;
  Comms comms_;
  std::unique_ptr<Communicator> workers_;
};

// The per-rank figures of the end-of-run report, gathered on the first worker.
enum ReportField {
  kIsServer,
  kSteps,
  kWall,
  kCpu,
  kPushes,
  kHeld,
  kGap,
  kSkipped,
  kSamples,
  kFields
};
using ReportRow = std::array<double, kFields>;

// Collective over every rank of the job: returns every rank's row, in world order, on the
// first worker (empty elsewhere). Waits at most `timeout`.
std::vector<ReportRow> gatherReport(const Cluster& cluster, const ReportRow& mine,
                                    std::chrono::milliseconds timeout);

}  // namespace ringtrain::ps
