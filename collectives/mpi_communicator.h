// Communicator over MPI for CPU tensors. Every collective runs on one background thread in
// FIFO order (see CommThread); all-reduce uses either MPI_Allreduce or ringtrain's ring.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <string>

#include "collectives/comm_thread.h"
#include "collectives/communicator.h"
#include "collectives/mpi_context.h"
#include "collectives/ring_allreduce.h"

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
  // bounds barrier(), the one blocking call. Collective: every rank of `parent` constructs it.
  MpiCommunicator(MPI_Comm parent, AllreduceAlgorithm algorithm,
                  std::chrono::milliseconds blockingTimeout = std::chrono::minutes(5));
  ~MpiCommunicator() override = default;

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  std::string backendName() const override;

  // Supported dtypes: float32, float64, int32, int64, bfloat16, float16; CPU, contiguous.
  WorkPtr allreduce(torch::Tensor& tensor, const std::string& tag = "allreduce") override;
  WorkPtr broadcast(torch::Tensor& tensor, int root) override;
  WorkPtr allgather(const torch::Tensor& input, torch::Tensor& output) override;
  void barrier() override;

 private:
  void runMpiAllreduce(void* data, std::int64_t count, RingDtype dtype);
  void checkTensor(const torch::Tensor& tensor, const char* op) const;

  MpiComm comm_;
  const AllreduceAlgorithm algorithm_;
  const std::chrono::milliseconds blockingTimeout_;
  MpiUserOp sumBFloat16_;
  MpiUserOp sumFloat16_;
  RingProgress progress_;    // written by the thread's ring, read by timed-out waiters
  RingWorkspace workspace_;  // only used on the thread
  // Last member: destroyed (drained and joined) before the communicator and ops it uses.
  CommThread thread_;
};

// Chooses a backend by name: "ring" (ringtrain's ring all-reduce over MPI), "mpi"
// (MPI_Allreduce) or "nccl". Collective over `comm` (duplicated inside). `blockingTimeout`
// bounds barrier(). Throws ConfigError for an unknown name or a backend not built in.
std::unique_ptr<Communicator> makeCommunicator(
    const std::string& backend, MPI_Comm comm,
    std::chrono::milliseconds blockingTimeout = std::chrono::minutes(5));

}  // namespace ringtrain
