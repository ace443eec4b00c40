// RAII owners for the CUDA and NCCL handles of the NCCL backend: a communicator, a stream and
// an event. Move-only; destructors never throw (there is nobody left to tell, and a throwing
// destructor during unwinding would terminate the job without its error line).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

namespace ringtrain {

// Owns one ncclComm_t. Released with ncclCommAbort when abort() was called or when it is
// destroyed during stack unwinding (its peers may be gone, and ncclCommDestroy would wait
// for them), with ncclCommDestroy otherwise.
class NcclCommHandle {
 public:
  NcclCommHandle() = default;
  // ncclCommInitRank on the current CUDA device; throws CommError naming `rank`.
  NcclCommHandle(int size, const ncclUniqueId& id, int rank);
  ~NcclCommHandle();
  NcclCommHandle(NcclCommHandle&& other) noexcept;
  NcclCommHandle& operator=(NcclCommHandle&& other) noexcept;
  NcclCommHandle(const NcclCommHandle&) = delete;
  NcclCommHandle& operator=(const NcclCommHandle&) = delete;

  ncclComm_t get() const { return comm_; }
  // Aborts every operation in flight and frees the communicator now. Idempotent.
  void abort() noexcept;
  bool aborted() const { return aborted_; }

 private:
  void release() noexcept;

  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
};

// Owns a non-blocking stream on the current device: it does not synchronise implicitly with
// the legacy default stream, so communication is ordered only by the events we place.
class CudaStream {
 public:
  explicit CudaStream(int rank);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return stream_; }
  // True when every operation queued on the stream has finished (or it failed).
  bool idle() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// Owns an event without timing (cheaper to record and query).
class CudaEvent {
 public:
  explicit CudaEvent(int rank);
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace ringtrain
