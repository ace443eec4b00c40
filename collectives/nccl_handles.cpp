#include "collectives/nccl_handles.h"

#include <exception>
#include <utility>

#include "collectives/cuda_check.h"

namespace ringtrain {

NcclCommHandle::NcclCommHandle(int size, const ncclUniqueId& id, int rank) {
  // Blocking initialisation: it returns once every rank joined. A rank that never arrives
  // has failed before this point, and main() then takes the whole job down.
  checkNccl(ncclCommInitRank(&comm_, size, id, rank), "ncclCommInitRank", rank);
}

NcclCommHandle::~NcclCommHandle() { release(); }

NcclCommHandle::NcclCommHandle(NcclCommHandle&& other) noexcept
    : comm_(std::exchange(other.comm_, nullptr)), aborted_(std::exchange(other.aborted_, false)) {}

NcclCommHandle& NcclCommHandle::operator=(NcclCommHandle&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = std::exchange(other.comm_, nullptr);
    aborted_ = std::exchange(other.aborted_, false);
  }
  return *this;
}

void NcclCommHandle::abort() noexcept {
  aborted_ = true;
  if (comm_ == nullptr) return;
  ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommHandle::release() noexcept {
  if (comm_ == nullptr) return;
  if (std::uncaught_exceptions() > 0) {
    abort();
    return;
  }
  ncclCommDestroy(comm_);
  comm_ = nullptr;
}

CudaStream::CudaStream(int rank) {
  checkCuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", rank);
}

CudaStream::~CudaStream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

bool CudaStream::idle() const { return cudaStreamQuery(stream_) != cudaErrorNotReady; }

CudaEvent::CudaEvent(int rank) {
  checkCuda(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate", rank);
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}

}  // namespace ringtrain
