// The device-independent half of the NCCL backend ("nccl"): whether this process can run it,
// which GPU a rank uses, how CUDA/NCCL failures read, and the factory makeCommunicator calls.
//
// Compiled in every build, with or without CUDA: nothing here includes a CUDA or NCCL header,
// so a binary built without NCCL still answers `backend: nccl` with one clear line. The part
// that talks to the GPU lives in collectives/nccl_*.cpp, compiled only when CMake found the
// CUDA toolkit and NCCL (RINGTRAIN_WITH_NCCL=1, see cmake/nccl.cmake).
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collectives/communicator.h"

namespace ringtrain {

// What this process offers the NCCL backend.
struct GpuProbe {
  bool builtWithNccl = false;  // this binary holds collectives/nccl_*.cpp
  bool torchHasCuda = false;   // LibTorch can run CUDA kernels (a CUDA build of LibTorch)
  int deviceCount = 0;         // GPUs the CUDA runtime sees (after CUDA_VISIBLE_DEVICES)
  std::string deviceError;     // why deviceCount is 0, when the CUDA runtime said why
};

// Probes this process: build flags, LibTorch, and cudaGetDeviceCount. Never throws.
GpuProbe probeGpu();

// Throws ConfigError with one line and a HINT unless `probe` can run the nccl backend.
void requireGpuBackend(const GpuProbe& probe, int rank = -1);

// The GPU of a rank, as an index among the GPUs this process sees:
// - exactly one GPU visible: device 0. A scheduler that gives each task its own GPU (SLURM
//   --gpus-per-task=1, or CUDA_VISIBLE_DEVICES per rank) shows each rank one device, and
//   sameGpuOnANode then tells whether two ranks got the same physical GPU;
// - otherwise its local rank. Throws ConfigError when the node has more ranks than the GPUs
//   a rank sees (NCCL refuses two ranks on one GPU, and sharing one would slow both down).
int selectDevice(int localRank, int localSize, int deviceCount, int rank = -1);

// The local ranks of the first two entries of `gpuIds` (one per local rank: the physical
// GPU's UUID) that name the same GPU, or {-1, -1} when every rank has its own.
std::pair<int, int> sameGpuOnANode(const std::vector<std::string>& gpuIds);

// Throws ConfigError naming the two local ranks and their GPU when sameGpuOnANode finds
// that ranks share one; `rank` is the caller's rank, for the error line.
void requireOwnGpu(const std::vector<std::string>& gpuIds, int rank = -1);

// "ncclAllReduce failed on rank 1: unhandled system error (ncclSystemError=2). <detail>"
// `rank` < 0 leaves the rank out; an empty `detail` leaves it out.
std::string formatGpuError(const std::string& call, int rank, const std::string& codeName, int code,
                           const std::string& text, const std::string& detail = {});

// What one poll of an in-flight GPU collective leads to. Errors are reported before a
// timeout (the real cause is more useful than "too slow"), and an operation found complete
// at its deadline counts as done.
enum class PollOutcome { Done, Pending, Failed, TimedOut };
PollOutcome classifyPoll(bool eventDone, bool eventError, bool asyncError, bool pastDeadline);

// Whether this library was compiled with the NCCL backend, and NCCL's version ("2.28.9", from
// the loaded library) or "" when not compiled in.
bool ncclBuiltIn();
std::string ncclVersion();
// The CUDA runtime's version ("13.0") and the name of each GPU this process sees, through the
// NCCL backend's CUDA runtime: "" and none in a build without it. Never throw.
std::string cudaRuntimeVersion();
std::vector<std::string> gpuNames();

// Backend "nccl": probes the process (throwing requireGpuBackend's ConfigError before any
// collective, so no rank is left waiting), then builds an NcclCommunicator over a duplicate of
// `comm`. Collective over `comm`. `blockingTimeout` bounds set-up and barrier().
std::unique_ptr<Communicator> makeNcclCommunicator(MPI_Comm comm,
                                                   std::chrono::milliseconds blockingTimeout);

// The device a trainer using `comm` keeps its model and batches on: the rank's GPU for the
// nccl backend, the CPU for every other.
torch::Device trainingDevice(const Communicator& comm);

}  // namespace ringtrain
