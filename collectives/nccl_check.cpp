#include "collectives/cuda_check.h"

#include "collectives/gpu_backend.h"
#include "collectives/nccl_communicator.h"
#include "core/error.h"

namespace ringtrain {

const char* ncclResultName(ncclResult_t rc) {
  switch (rc) {
    case ncclSuccess:
      return "ncclSuccess";
    case ncclUnhandledCudaError:
      return "ncclUnhandledCudaError";
    case ncclSystemError:
      return "ncclSystemError";
    case ncclInternalError:
      return "ncclInternalError";
    case ncclInvalidArgument:
      return "ncclInvalidArgument";
    case ncclInvalidUsage:
      return "ncclInvalidUsage";
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    case ncclRemoteError:
      return "ncclRemoteError";
    case ncclInProgress:
      return "ncclInProgress";
#endif
    default:
      return "ncclResult";
  }
}

std::string ncclHint(ncclResult_t rc) {
  switch (rc) {
    case ncclUnhandledCudaError:
      return "a CUDA call inside NCCL failed; check the GPU with nvidia-smi and rerun with "
             "NCCL_DEBUG=INFO";
    case ncclSystemError:
      return "a system call or the network failed (a peer rank may have died); rerun with "
             "NCCL_DEBUG=INFO and check the other ranks' logs";
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return "every rank must issue the same collectives in the same order on its own GPU; "
             "rerun with NCCL_DEBUG=WARN for NCCL's reason";
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    case ncclRemoteError:
      return "a peer rank failed or died; check the other ranks' logs";
#endif
    default:
      return "rerun with NCCL_DEBUG=INFO for NCCL's own log";
  }
}

std::string cudaHint(cudaError_t rc) {
  switch (rc) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      return "check the GPU and its driver with nvidia-smi, and CUDA_VISIBLE_DEVICES";
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: lower data.batch_size or distributed.bucket_mb";
    default:
      return "rerun with CUDA_LAUNCH_BLOCKING=1 to find the failing operation";
  }
}

std::string ncclLastError(ncclComm_t comm) {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
  const char* text = ncclGetLastError(comm);
  return text ? std::string(text) : std::string();
#else
  (void)comm;
  return {};
#endif
}

void checkCuda(cudaError_t rc, const char* call, int rank) {
  if (rc == cudaSuccess) return;
  // Clear the sticky "last error" so a later unrelated check does not report this one again.
  cudaGetLastError();
  throw CommError(formatGpuError(call, rank, cudaGetErrorName(rc), static_cast<int>(rc),
                                 cudaGetErrorString(rc)),
                  cudaHint(rc), rank);
}

void checkNccl(ncclResult_t rc, const char* call, int rank, ncclComm_t comm) {
  if (rc == ncclSuccess) return;
  throw CommError(formatGpuError(call, rank, ncclResultName(rc), static_cast<int>(rc),
                                 ncclGetErrorString(rc), ncclLastError(comm)),
                  ncclHint(rc), rank);
}

std::string cudaRuntimeVersionText() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  // 1000 * major + 10 * minor.
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

std::vector<std::string> cudaDeviceNames() {
  std::vector<std::string> names;
  for (int device = 0; device < cudaDeviceCount(nullptr); ++device) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) {
      cudaGetLastError();
      names.emplace_back("unknown");
      continue;
    }
    names.emplace_back(properties.name);
  }
  return names;
}

}  // namespace ringtrain
