// Communicator over MPI for CPU tensors. Every collective runs on one background thread in
// FIFO order (see CommThread); all-reduce uses either MPI_Allreduce or ringtrain's ring.
// With the ring and `sharedMemory`, allocateBuffer() places buffers in an MPI shared-memory
// window over the node's ranks. When all ranks are on one node, their all-reduce reads the
// peers' data in place (shmAllreduce: the ring's sums, bit for bit, without messages). When
// they span nodes with the same number of ranks (> 1) on each, it sums through shared memory
// inside each node and with rings between nodes (hierarchicalAllreduce). Other tensors, and
// other layouts, take the ring over all ranks.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collectives/comm_thread.h"
#include "collectives/communicator.h"
#include "collectives/mpi_context.h"
#include "collectives/ring_allreduce.h"
#include "collectives/shared_window.h"

namespace ringtrain {

enum class AllreduceAlgorithm {
  Mpi,   // MPI_Allreduce (backend "mpi")
  Ring,  // ringAllreduce over MPI point-to-point (backend "ring")
};

// Owns a commutative user-defined MPI_Op (MPI has no built-in sum for bf16/fp16).
class MpiUserOp {
 public:
  explicit MpiUserOp(MPI_User_function* function);
  ~MpiUserOp();
  MpiUserOp(const MpiUserOp&) = delete;
  MpiUserOp& operator=(const MpiUserOp&) = delete;
  MPI_Op get() const { return op_; }

 private:
  MPI_Op op_ = MPI_OP_NULL;
};

class MpiCommunicator : public Communicator {
 public:
  // Duplicates `parent`, so its traffic never mixes with the caller's. `blockingTimeout`
  // bounds barrier(), the one blocking call. `sharedMemory` lets the ring use shared-memory
  // buffers when all ranks are on one node. Collective: every rank of `parent` constructs it.
  MpiCommunicator(MPI_Comm parent, AllreduceAlgorithm algorithm,
                  std::chrono::milliseconds blockingTimeout = std::chrono::minutes(5),
                  bool sharedMemory = true);
  ~MpiCommunicator() override = default;

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  std::string backendName() const override;
  std::string allreducePath() const override;
  LinkWaits linkWaits() const override { return progress_.waits(); }

  // Supported dtypes: float32, float64, int32, int64, bfloat16, float16; CPU, contiguous.
  WorkPtr allreduce(torch::Tensor& tensor, const std::string& tag = "allreduce",
                    ReduceOp op = ReduceOp::Sum) override;
  WorkPtr broadcast(torch::Tensor& tensor, int root) override;
  WorkPtr allgather(const torch::Tensor& input, torch::Tensor& output) override;
  // The ring's halves (shared memory on one node); the rest take the default.
  WorkPtr reduceScatter(torch::Tensor& tensor, const std::string& tag = "reduce-scatter",
                        ReduceOp op = ReduceOp::Sum) override;
  // The ring's all-gather half, shared memory on one node, or MPI_Allgatherv (backend mpi).
  WorkPtr allgatherShards(torch::Tensor& tensor, const std::string& tag = "all-gather") override;
  void barrier() override;
  // A shared-memory buffer (any dtype; allreduce takes the supported ones) when the ring runs
  // on one node, see the class comment; otherwise torch::zeros.
  torch::Tensor allocateBuffer(int64_t numel, const torch::TensorOptions& options) override;
  // Whether allocateBuffer() hands out shared memory.
  bool sharesMemory() const { return node_ != nullptr; }
  // Whether those buffers take the hierarchical (multi-node) all-reduce.
  bool isHierarchical() const { return across_ != nullptr; }

 private:
  // The window holding `tensor`'s bytes in this rank's part, or null.
  SharedWindow* windowOf(const torch::Tensor& tensor);
  void runMpiAllreduce(void* data, std::int64_t count, RingDtype dtype);
  // The ring dtype of a tensor `what` reduces (throws CommError for others).
  RingDtype reducibleDtype(const torch::Tensor& tensor, ReduceOp op, const char* what) const;
  // The ring's options on this communicator (segments, progress, workspace).
  RingOptions ringOptions(RingPhases phases);
  void checkTensor(const torch::Tensor& tensor, const char* op) const;
  // Every rank of `sub` (a communicator of some of this one's ranks): its rank here.
  std::vector<int> rankNamesOf(MPI_Comm sub) const;

  MpiComm comm_;
  const AllreduceAlgorithm algorithm_;
  const std::chrono::milliseconds blockingTimeout_;
  MpiUserOp sumBFloat16_;
  MpiUserOp sumFloat16_;
  RingProgress progress_;            // written by the thread's ring, read by timed-out waiters
  RingWorkspace workspace_;          // only used on the thread
  std::unique_ptr<MpiComm> node_;    // this node's ranks, when sharing memory
  std::unique_ptr<MpiComm> across_;  // one rank per node, for the hierarchical all-reduce
  std::vector<int> nodeRankNames_;   // node_'s and across_'s ranks as ranks of comm_
  std::vector<int> acrossRankNames_;
  std::vector<std::string> hostOfRank_;  // comm_'s ranks' hosts; empty when all share one
  std::vector<std::string> nodeHosts_;   // each node's host name, in across_'s order
  mutable std::mutex windowsMutex_;
  std::vector<std::unique_ptr<SharedWindow>> windows_;  // one per allocateBuffer()
  // Last member: destroyed (drained and joined) before the communicator and ops it uses.
  CommThread thread_;
};

// Chooses a backend by name: "ring" (ringtrain's ring all-reduce over MPI), "mpi"
// (MPI_Allreduce) or "nccl". Collective over `comm` (duplicated inside). `blockingTimeout`
// bounds barrier(); `sharedMemory` as in MpiCommunicator (distributed.shared_memory). Throws
// ConfigError for an unknown name or a backend not built in.
std::unique_ptr<Communicator> makeCommunicator(
    const std::string& backend, MPI_Comm comm,
    std::chrono::milliseconds blockingTimeout = std::chrono::minutes(5), bool sharedMemory = true);

}  // namespace ringtrain
