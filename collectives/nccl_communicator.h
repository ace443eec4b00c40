// Communicator over NCCL, one rank per GPU (backend "nccl"). Only in the NCCL build.
//
// Set-up: the rank's GPU is its local rank (MPI_Comm_split_type shared); rank 0 creates the
// NCCL unique id, MPI broadcasts it, every rank calls ncclCommInitRank, then an MPI barrier.
//
// Streams: each collective is queued on one dedicated communication stream, ordered after
// everything queued so far on LibTorch's current (compute) stream by cudaEventRecord +
// cudaStreamWaitEvent. The call returns at once, so a caller that all-reduces a bucket from
// a backward hook lets communication overlap the rest of backward. Work::wait polls the
// operation's completion event and ncclCommGetAsyncError until its deadline, never
// synchronising the whole device; on a timeout or an asynchronous error it aborts the NCCL
// communicator (ncclCommAbort) and throws, since the ranks can no longer be in step.
//
// Tensors: contiguous, on this rank's GPU or on the CPU (small reductions of the trainer,
// e.g. the logged loss: staged through the GPU and copied back by Work::wait, so wait before
// reading them even when isCompleted() said true).
// NCCL chooses the algorithm (ring by default); NCCL_ALGO and the other NCCL_* variables are
// left to NCCL. Not thread-safe: use a communicator from one thread, as the trainer does.
#pragma once

#include <mpi.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/cuda_check.h"
#include "collectives/mpi_context.h"
#include "collectives/nccl_handles.h"

namespace ringtrain {

struct NcclShared;
class NcclWork;

// NCCL's data type for `type`; false when NCCL has none (bool, complex, ...).
bool toNcclDataType(at::ScalarType type, ncclDataType_t* out);

class NcclCommunicator : public Communicator {
 public:
  // Collective over `parent` (duplicated inside). Throws ConfigError when this node has more
  // ranks than GPUs, CommError when CUDA or NCCL fail. `blockingTimeout` bounds barrier().
  NcclCommunicator(MPI_Comm parent, std::chrono::milliseconds blockingTimeout);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  std::string backendName() const override { return "nccl"; }
  // The CUDA device index of this rank's GPU.
  int device() const { return device_; }

  // Supported dtypes: float32, float64, float16, bfloat16, int32, int64, int8, uint8.
  WorkPtr allreduce(torch::Tensor& tensor, const std::string& tag = "allreduce",
                    ReduceOp op = ReduceOp::Sum) override;
  WorkPtr broadcast(torch::Tensor& tensor, int root) override;
  WorkPtr allgather(const torch::Tensor& input, torch::Tensor& output) override;
  // MPI barrier (host-side; GPU work already queued is not waited for), bounded by the
  // blocking timeout.
  void barrier() override;

 private:
  // Enqueue(stream) issues the NCCL call on the communication stream.
  template <typename Enqueue>
  WorkPtr launch(std::string description, std::vector<torch::Tensor> keep,
                 std::function<void()> finish, const char* call, Enqueue&& enqueue);
  // `tensor` itself when it lives on this rank's GPU, else a copy there.
  torch::Tensor onDevice(const torch::Tensor& tensor, const char* op) const;
  ncclDataType_t dataTypeOf(const torch::Tensor& tensor, const char* op) const;

  MpiComm mpi_;
  const std::chrono::milliseconds blockingTimeout_;
  int device_ = -1;
  std::shared_ptr<NcclShared> shared_;
  // Works whose operation may still run on the GPU: they keep their tensors' memory alive
  // even when the caller drops the handle, so LibTorch's allocator cannot hand it out again
  // while NCCL still writes to it. Pruned as operations complete.
  std::vector<std::shared_ptr<NcclWork>> inFlight_;
};

// For collectives/gpu_backend.cpp, which is compiled without the CUDA headers' knowledge.
std::unique_ptr<Communicator> createNcclCommunicator(MPI_Comm comm,
                                                     std::chrono::milliseconds blockingTimeout);
// GPUs visible to the CUDA runtime; 0 with the runtime's reason in *error when it failed.
int cudaDeviceCount(std::string* error);
// "2.28.9": the version of the NCCL library loaded at run time.
std::string ncclLibraryVersion();
// "13.0": the CUDA runtime's version, "" when it cannot say.
std::string cudaRuntimeVersionText();
// "NVIDIA H100 80GB HBM3" for each GPU the CUDA runtime sees.
std::vector<std::string> cudaDeviceNames();
// The GPU of `comm` when it is an NcclCommunicator, else -1.
int ncclDeviceOf(const Communicator& comm);

}  // namespace ringtrain
