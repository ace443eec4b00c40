#include "trainer/ps/cluster.h"

#include <exception>
#include <string>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "trainer/checkpoint/checkpoint.h"

namespace ringtrain::ps {

namespace {

int worldSize() {
  int size = 0;
  checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  return size;
}

}  // namespace

Cluster::Cluster(const Config& cfg, const torch::nn::Module& model, int worldRank)
    : rank_(worldRank),
      roles_(assignRoles(worldSize(), cfg.ps.servers, cfg.ps.placement)),
      layout_(parameterInfo(model), roles_.numServers()),
      comms_(makeComms(MPI_COMM_WORLD, roles_)) {
  checkSameLayoutEverywhere(cfg);
  if (!isServer()) {
    workers_ =
        makeCommunicator(cfg.distributed.backend, comms_.role.get(), cfg.distributed.timeout());
  }
}

Cluster::~Cluster() {
  // Unwinding from an error: main() aborts the job next (MPI_Abort), and the communicator's
  // thread may be blocked in an MPI call that only the abort ends, so joining it here would
  // hang. Leave it to the abort (it is the process's last act).
  if (std::uncaught_exceptions() > 0) static_cast<void>(workers_.release());
}

Communicator& Cluster::workers() {
  if (!workers_) {
    throw Error("rank " + std::to_string(rank_) +
                    " is a parameter server and holds no replica to train or evaluate",
                "", rank_);
  }
  return *workers_;
}

// Every rank must agree on the layout and the protocol, or messages would not line up.
void Cluster::checkSameLayoutEverywhere(const Config& cfg) {
  const std::string mine = stableHash(layout_.fingerprint() + "|" + cfg.ps.consistency + "|" +
                                      std::to_string(cfg.ps.staleness));
  const auto local = static_cast<int64_t>(std::stoull(mine, nullptr, 16));
  std::vector<int64_t> all(static_cast<size_t>(roles_.worldSize));
  checkMpi(MPI_Allgather(&local, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, comms_.ps.get()),
           "MPI_Allgather (parameter-server layout)", rank_);
  for (int r = 0; r < roles_.worldSize; ++r) {
    if (all[static_cast<size_t>(r)] != all[0]) {
      throw ConfigError("rank " + std::to_string(r) +
                            " has a different parameter-server layout or ps settings than rank 0",
                        "every rank must use the same config and model code", rank_);
    }
  }
}

std::vector<ReportRow> gatherReport(const Cluster& cluster, const ReportRow& mine,
                                    std::chrono::milliseconds timeout) {
  const int ranks = cluster.roles().worldSize;
  const int root = cluster.roles().workers[0];
  std::vector<ReportRow> all(static_cast<size_t>(ranks));
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Igather(mine.data(), kFields, MPI_DOUBLE, all.data(), kFields, MPI_DOUBLE, root,
                       cluster.psComm(), &request),
           "MPI_Igather (parameter-server report)", cluster.worldRank());
  PoliteWaiter(timeout, cluster.worldRank()).wait(request, nullptr, [] {
    return std::string("every rank's end-of-run report");
  });
  if (cluster.worldRank() != root) all.clear();
  return all;
}

}  // namespace ringtrain::ps
