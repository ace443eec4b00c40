#include "collectives/gpu_backend.h"

#include "core/error.h"

#if RINGTRAIN_WITH_NCCL
#include "collectives/nccl_communicator.h"
#endif

namespace ringtrain {
namespace {

// How to get a LibTorch that can drive the GPU: the one inside a PyTorch install.
constexpr const char* kCudaLibTorchHint =
    "build against a CUDA LibTorch: cmake -DCMAKE_PREFIX_PATH=$(python3 -c 'import "
    "torch;print(torch.utils.cmake_prefix_path)')";

int worldRankIfKnown(MPI_Comm comm) {
  int initialised = 0;
  int finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  int rank = -1;
  if (initialised && !finalised && MPI_Comm_rank(comm, &rank) != MPI_SUCCESS) rank = -1;
  return rank;
}

}  // namespace

bool ncclBuiltIn() {
#if RINGTRAIN_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string ncclVersion() {
#if RINGTRAIN_WITH_NCCL
  return ncclLibraryVersion();
#else
  return {};
#endif
}

std::string cudaRuntimeVersion() {
#if RINGTRAIN_WITH_NCCL
  return cudaRuntimeVersionText();
#else
  return {};
#endif
}

std::vector<std::string> gpuNames() {
#if RINGTRAIN_WITH_NCCL
  return cudaDeviceNames();
#else
  return {};
#endif
}

GpuProbe probeGpu() {
  GpuProbe probe;
  probe.builtWithNccl = ncclBuiltIn();
#if RINGTRAIN_TORCH_CUDA
  probe.torchHasCuda = true;
#else
  // A CUDA LibTorch that CMake did not recognise still answers here when it sees a GPU.
  probe.torchHasCuda = torch::cuda::is_available();
#endif
#if RINGTRAIN_WITH_NCCL
  probe.deviceCount = cudaDeviceCount(&probe.deviceError);
#endif
  return probe;
}

void requireGpuBackend(const GpuProbe& probe, int rank) {
  const std::string prefix = "distributed.backend: nccl ";
  if (!probe.builtWithNccl) {
    throw ConfigError(prefix +
                          "is not built into this binary (it was configured without the "
                          "CUDA toolkit and NCCL)",
                      "use distributed.backend ring or mpi, or rebuild where CUDA and NCCL are "
                      "installed with cmake -DRINGTRAIN_NCCL=ON (and -DNCCL_ROOT=DIR if NCCL is "
                      "outside the CUDA toolkit)",
                      rank);
  }
  const bool noDevice = probe.deviceCount <= 0;
  if (!noDevice && probe.torchHasCuda) return;
  std::string why;
  if (noDevice) {
    why = "no GPU is visible to this process";
    if (!probe.deviceError.empty()) why += " (cudaGetDeviceCount: " + probe.deviceError + ")";
  }
  if (!probe.torchHasCuda)
    why += std::string(noDevice ? " and " : "") + "this LibTorch is CPU-only";
  std::string hint = "use distributed.backend ring or mpi";
  if (noDevice && !probe.torchHasCuda) {
    hint += ", or on a machine with a GPU " + std::string(kCudaLibTorchHint);
  } else if (noDevice) {
    hint += ", or run on a machine with a GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)";
  } else {
    hint += ", or " + std::string(kCudaLibTorchHint);
  }
  throw ConfigError(prefix + "needs a GPU and a CUDA-enabled LibTorch; " + why, hint, rank);
}

int selectDevice(int localRank, int localSize, int deviceCount, int rank) {
  if (deviceCount <= 0) {
    throw ConfigError("distributed.backend: nccl found no GPU on this node",
                      "use distributed.backend ring or mpi", rank);
  }
  if (localRank < 0 || localRank >= localSize) {
    throw ConfigError("local rank " + std::to_string(localRank) + " is outside this node's " +
                          std::to_string(localSize) + " rank(s)",
                      "launch every rank with the same mpirun", rank);
  }
  if (deviceCount == 1) return 0;  // each rank sees its own GPU, or requireOwnGpu refuses
  if (localSize > deviceCount) {
    throw ConfigError(
        "distributed.backend: nccl needs one GPU per rank, but " + std::to_string(localSize) +
            " ranks share this node's " + std::to_string(deviceCount) + " GPU(s)",
        "launch at most " + std::to_string(deviceCount) + " rank(s) per node (mpirun -np " +
            std::to_string(deviceCount) + ", or --map-by ppr:" + std::to_string(deviceCount) +
            ":node on several nodes), or give each rank its own GPU (srun --gpus-per-task=1)",
        rank);
  }
  return localRank;
}

std::pair<int, int> sameGpuOnANode(const std::vector<std::string>& gpuIds) {
  for (size_t a = 0; a < gpuIds.size(); ++a) {
    for (size_t b = a + 1; b < gpuIds.size(); ++b) {
      if (gpuIds[a] == gpuIds[b]) return {static_cast<int>(a), static_cast<int>(b)};
    }
  }
  return {-1, -1};
}

void requireOwnGpu(const std::vector<std::string>& gpuIds, int rank) {
  const auto [first, second] = sameGpuOnANode(gpuIds);
  if (first < 0) return;
  throw ConfigError("distributed.backend: nccl needs one GPU per rank, but local ranks " +
                        std::to_string(first) + " and " + std::to_string(second) +
                        " of this node's " + std::to_string(gpuIds.size()) + " ranks share GPU " +
                        gpuIds[static_cast<size_t>(first)],
                    "give each rank its own GPU (srun --gpus-per-task=1, a different "
                    "CUDA_VISIBLE_DEVICES per rank), or launch one rank per GPU",
                    rank);
}

std::string formatGpuError(const std::string& call, int rank, const std::string& codeName, int code,
                           const std::string& text, const std::string& detail) {
  std::string message = call + " failed";
  if (rank >= 0) message += " on rank " + std::to_string(rank);
  message += ": " + text + " (" + codeName + "=" + std::to_string(code) + ")";
  if (!detail.empty()) message += ". " + detail;
  return message;
}

PollOutcome classifyPoll(bool eventDone, bool eventError, bool asyncError, bool pastDeadline) {
  if (eventDone) return PollOutcome::Done;
  if (eventError || asyncError) return PollOutcome::Failed;
  return pastDeadline ? PollOutcome::TimedOut : PollOutcome::Pending;
}

std::unique_ptr<Communicator> makeNcclCommunicator(MPI_Comm comm,
                                                   std::chrono::milliseconds blockingTimeout) {
  // Every rank probes on its own before the first collective: a rank that cannot run NCCL
  // throws here, and main() takes the job down instead of leaving the others waiting.
  requireGpuBackend(probeGpu(), worldRankIfKnown(comm));
#if RINGTRAIN_WITH_NCCL
  return createNcclCommunicator(comm, blockingTimeout);
#else
  (void)blockingTimeout;
  return nullptr;  // not reached: requireGpuBackend throws without NCCL
#endif
}

torch::Device trainingDevice(const Communicator& comm) {
#if RINGTRAIN_WITH_NCCL
  const int device = ncclDeviceOf(comm);
  if (device >= 0) return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(device));
#else
  (void)comm;
#endif
  return torch::Device(torch::kCPU);
}

}  // namespace ringtrain
