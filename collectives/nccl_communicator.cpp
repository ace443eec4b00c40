#include "collectives/nccl_communicator.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "collectives/gpu_backend.h"
#include "collectives/mpi_context.h"
#include "core/error.h"

// Only a CUDA LibTorch has libc10_cuda: a CPU-only one (Debian's) ships the header without
// the library, so CMake decides (RINGTRAIN_TORCH_CUDA, see cmake/nccl.cmake), not
// __has_include.
#if RINGTRAIN_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace ringtrain {

using Clock = std::chrono::steady_clock;

// What a communicator shares with the Work handles it returned: a handle may outlive its
// communicator, and aborts the NCCL communicator when its wait fails. Members are declared
// so that the communicator is released before the stream its operations run on.
struct NcclShared {
  NcclShared(int rankIn, int deviceIn, const ncclUniqueId& id, int size)
      : rank(rankIn), device(deviceIn), stream(rankIn), ready(rankIn), comm(size, id, rankIn) {}
  ~NcclShared() {
    // ncclCommDestroy would wait for operations that may never finish (a dead peer).
    if (!comm.aborted() && !stream.idle()) comm.abort();
  }

  void abort(const std::string& why) noexcept {
    if (abortReason.empty()) abortReason = why;
    comm.abort();
  }
  void checkUsable(const std::string& op) const {
    if (!comm.aborted()) return;
    throw CommError(op + " on rank " + std::to_string(rank) +
                        ": the NCCL communicator was aborted earlier (" + abortReason + ")",
                    "the ranks are no longer in step; restart the job", rank);
  }

  const int rank;
  const int device;
  CudaStream stream;  // the communication stream
  CudaEvent ready;    // recorded on the compute stream before each collective
  NcclCommHandle comm;
  std::string abortReason;
};

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclShared> shared, std::string description,
           std::vector<torch::Tensor> keep, std::function<void()> finish)
      : shared_(std::move(shared)),
        done_(shared_->rank),
        description_(std::move(description)),
        keep_(std::move(keep)),
        finish_(std::move(finish)) {}

  cudaEvent_t doneEvent() const { return done_.get(); }

  bool isCompleted() override {
    if (completed_ || shared_->comm.aborted()) return true;
    return cudaEventQuery(done_.get()) != cudaErrorNotReady;
  }

  void wait(std::chrono::milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    auto pause = std::chrono::microseconds(10);
    while (!completed_) {
      shared_->checkUsable(description_);
      const cudaError_t event = cudaEventQuery(done_.get());
      ncclResult_t async = ncclSuccess;
      const ncclResult_t queried = ncclCommGetAsyncError(shared_->comm.get(), &async);
      if (queried != ncclSuccess) async = queried;
      const bool eventError = event != cudaSuccess && event != cudaErrorNotReady;
      switch (classifyPoll(event == cudaSuccess, eventError, async != ncclSuccess,
                           Clock::now() >= deadline)) {
        case PollOutcome::Done:
          complete();
          return;
        case PollOutcome::Failed:
          fail(event, async);
        case PollOutcome::TimedOut:
          timeOut(timeout);
        case PollOutcome::Pending:
          // Short sleeps keep the latency of a fast collective low without spinning a core
          // for a slow one.
          std::this_thread::sleep_for(pause);
          pause = std::min(pause * 2, std::chrono::microseconds(1000));
          break;
      }
    }
  }

  std::string describe() const override { return description_; }

 private:
  void complete() {
    completed_ = true;
    if (finish_) finish_();  // e.g. copy a staged result back to the CPU tensor
    keep_.clear();
  }

  [[noreturn]] void fail(cudaError_t event, ncclResult_t async) {
    const int rank = shared_->rank;
    const std::string detail = ncclLastError(shared_->comm.get());
    shared_->abort(description_ + " failed");
    if (async != ncclSuccess) {
      throw CommError(
          formatGpuError(description_ + " (asynchronous NCCL error)", rank, ncclResultName(async),
                         static_cast<int>(async), ncclGetErrorString(async), detail),
          ncclHint(async), rank);
    }
    cudaGetLastError();
    throw CommError(
        formatGpuError(description_ + " (cudaEventQuery)", rank, cudaGetErrorName(event),
                       static_cast<int>(event), cudaGetErrorString(event)),
        cudaHint(event), rank);
  }

  [[noreturn]] void timeOut(std::chrono::milliseconds timeout) {
    shared_->abort(description_ + " timed out");
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(timeout.count()) / 1000.0);
    throw TimeoutError(description_ + " did not complete within " + seconds + " s on rank " +
                           std::to_string(shared_->rank) + " (GPU " +
                           std::to_string(shared_->device) + "); NCCL communicator aborted",
                       "another rank is stuck, slower, or dead, or issued its collectives in a "
                       "different order; check the other ranks' logs (NCCL_DEBUG=INFO shows "
                       "NCCL's view), or raise distributed.timeout_s",
                       shared_->rank);
  }

  std::shared_ptr<NcclShared> shared_;
  CudaEvent done_;
  const std::string description_;
  std::vector<torch::Tensor> keep_;  // the memory the operation reads and writes
  std::function<void()> finish_;
  bool completed_ = false;
};

namespace {

// LibTorch queues its kernels on its current stream; a CPU-only LibTorch queues none, and the
// legacy default stream stands in (the backend refuses to start there anyway).
cudaStream_t computeStream(int device) {
#if RINGTRAIN_TORCH_CUDA
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
#else
  (void)device;
  return cudaStreamLegacy;
#endif
}

std::string formatBytes(int64_t bytes) {
  char text[32];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(text, sizeof text, "%.1f KB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  }
  return text;
}

int64_t tensorBytes(const torch::Tensor& t) {
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

// The physical GPU behind `device`, as NVIDIA's tools print it ("GPU-8c1f...-..."): the same
// GPU reads the same in every process, whatever index CUDA_VISIBLE_DEVICES gives it there.
std::string gpuUuid(int device, int rank) {
  cudaDeviceProp properties{};
  checkCuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties", rank);
  const auto* b = reinterpret_cast<const unsigned char*>(properties.uuid.bytes);
  char text[48];
  std::snprintf(text, sizeof text,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
  return text;
}

// Chooses this rank's GPU among those it sees, and checks over the node that no two ranks
// chose the same physical GPU (ranks that each see one device may still see the same one).
int selectAndSetDevice(MPI_Comm comm, int rank) {
  std::string error;
  const int count = cudaDeviceCount(&error);
  if (count <= 0) requireGpuBackend(probeGpu(), rank);  // throws the one clear line
  const MpiComm node = nodeCommOf(comm);
  int localRank = 0;
  int localSize = 1;
  MPI_Comm_rank(node.get(), &localRank);
  MPI_Comm_size(node.get(), &localSize);
  const int device = selectDevice(localRank, localSize, count, rank);
  checkCuda(cudaSetDevice(device), "cudaSetDevice", rank);

  constexpr int kIdBytes = 48;
  std::vector<char> mine(kIdBytes, '\0');
  const std::string uuid = gpuUuid(device, rank);
  std::copy(uuid.begin(), uuid.end(), mine.begin());
  std::vector<char> all(static_cast<size_t>(kIdBytes) * static_cast<size_t>(localSize));
  checkMpi(
      MPI_Allgather(mine.data(), kIdBytes, MPI_CHAR, all.data(), kIdBytes, MPI_CHAR, node.get()),
      "MPI_Allgather(GPU UUIDs)", rank);
  std::vector<std::string> ids;
  for (int r = 0; r < localSize; ++r) ids.emplace_back(all.data() + r * kIdBytes);
  requireOwnGpu(ids, rank);
  return device;
}

// Rank 0's unique id, with whether it could make one: the others then fail with a clear
// line instead of calling ncclCommInitRank with garbage.
struct UniqueIdMessage {
  int ok = 0;
  ncclUniqueId id{};
};

ncclUniqueId shareUniqueId(MPI_Comm comm, int rank) {
  UniqueIdMessage message;
  ncclResult_t created = ncclSuccess;
  if (rank == 0) {
    created = ncclGetUniqueId(&message.id);
    message.ok = created == ncclSuccess ? 1 : 0;
  }
  checkMpi(MPI_Bcast(&message, static_cast<int>(sizeof message), MPI_BYTE, 0, comm),
           "MPI_Bcast(NCCL unique id)", rank);
  if (rank == 0) checkNccl(created, "ncclGetUniqueId", rank);
  if (!message.ok) {
    throw CommError("rank 0 could not create the NCCL unique id (ncclGetUniqueId failed)",
                    "see rank 0's error line", rank);
  }
  return message.id;
}

}  // namespace

bool toNcclDataType(at::ScalarType type, ncclDataType_t* out) {
  switch (type) {
    case at::kFloat:
      *out = ncclFloat32;
      return true;
    case at::kDouble:
      *out = ncclFloat64;
      return true;
    case at::kHalf:
      *out = ncclFloat16;
      return true;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case at::kBFloat16:
      *out = ncclBfloat16;
      return true;
#endif
    case at::kInt:
      *out = ncclInt32;
      return true;
    case at::kLong:
      *out = ncclInt64;
      return true;
    case at::kChar:
      *out = ncclInt8;
      return true;
    case at::kByte:
      *out = ncclUint8;
      return true;
    default:
      return false;
  }
}

NcclCommunicator::NcclCommunicator(MPI_Comm parent, std::chrono::milliseconds blockingTimeout)
    : mpi_(parent), blockingTimeout_(blockingTimeout) {
  device_ = selectAndSetDevice(mpi_.get(), rank());
  const ncclUniqueId id = shareUniqueId(mpi_.get(), rank());
  shared_ = std::make_shared<NcclShared>(rank(), device_, id, size());
  barrier();
}

NcclCommunicator::~NcclCommunicator() {
  // Operations still queued at destruction mean the caller gave up on them (an error is
  // unwinding the trainer): abort rather than wait for peers that may never come.
  if (shared_ && !shared_->comm.aborted() && !shared_->stream.idle()) {
    shared_->abort("destroyed with collectives in flight");
  }
}

ncclDataType_t NcclCommunicator::dataTypeOf(const torch::Tensor& tensor, const char* op) const {
  ncclDataType_t type{};
  if (!toNcclDataType(tensor.scalar_type(), &type)) {
    throw CommError(std::string(op) + ": dtype " + c10::toString(tensor.scalar_type()) +
                        " is not supported by the nccl backend",
                    "use float32, float64, float16, bfloat16, int32, int64, int8 or uint8", rank());
  }
  return type;
}

torch::Tensor NcclCommunicator::onDevice(const torch::Tensor& tensor, const char* op) const {
  const std::string where = std::string(op) + ": ";
  if (!tensor.defined()) throw CommError(where + "tensor is undefined", {}, rank());
  if (!tensor.is_contiguous()) {
    throw CommError(where + "tensor is not contiguous", "call .contiguous() first", rank());
  }
  if (tensor.is_cuda()) {
    if (tensor.device().index() != device_) {
      throw CommError(where + "tensor is on " + tensor.device().str() + ", but rank " +
                          std::to_string(rank()) + " uses cuda:" + std::to_string(device_),
                      "move the model and batches to comm's device (trainingDevice(comm))", rank());
    }
    return tensor;
  }
  if (!tensor.device().is_cpu()) {
    throw CommError(where + "tensor is on " + tensor.device().str() +
                        "; the nccl backend takes CUDA or CPU tensors",
                    {}, rank());
  }
  return tensor.to(torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(device_)));
}

template <typename Enqueue>
WorkPtr NcclCommunicator::launch(std::string description, std::vector<torch::Tensor> keep,
                                 std::function<void()> finish, const char* call,
                                 Enqueue&& enqueue) {
  shared_->checkUsable(description);
  // Forget completed operations: their memory may be reused now.
  std::vector<std::shared_ptr<NcclWork>> still;
  for (auto& w : inFlight_) {
    if (!w->isCompleted()) still.push_back(std::move(w));
  }
  inFlight_ = std::move(still);

  checkCuda(cudaSetDevice(device_), "cudaSetDevice", rank());
  const cudaStream_t stream = shared_->stream.get();
#if RINGTRAIN_TORCH_CUDA
  // LibTorch's caching allocator reuses a block once its tensor is freed, ordered only on the
  // stream that allocated it: record the communication stream's use too, so a tensor
  // released before its collective ends (a Work dropped unwaited) is not handed out early.
  const auto commStream =
      c10::cuda::getStreamFromExternal(stream, static_cast<c10::DeviceIndex>(device_));
  for (const auto& t : keep) {
    if (t.is_cuda())
      c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), commStream);
  }
#endif
  auto work = std::make_shared<NcclWork>(shared_, std::move(description), std::move(keep),
                                         std::move(finish));
  // Order the collective after the compute that produced its input, without blocking the
  // host or the compute stream.
  checkCuda(cudaEventRecord(shared_->ready.get(), computeStream(device_)), "cudaEventRecord",
            rank());
  checkCuda(cudaStreamWaitEvent(stream, shared_->ready.get(), 0), "cudaStreamWaitEvent", rank());
  const ncclResult_t rc = enqueue(shared_->comm.get(), stream);
  if (rc != ncclSuccess) {
    const std::string detail = ncclLastError(shared_->comm.get());
    shared_->abort(std::string(call) + " failed");
    throw CommError(formatGpuError(call, rank(), ncclResultName(rc), static_cast<int>(rc),
                                   ncclGetErrorString(rc), detail),
                    ncclHint(rc), rank());
  }
  checkCuda(cudaEventRecord(work->doneEvent(), stream), "cudaEventRecord", rank());
  inFlight_.push_back(work);
  return work;
}

WorkPtr NcclCommunicator::allreduce(torch::Tensor& tensor, const std::string& tag, ReduceOp op) {
  const ncclDataType_t type = dataTypeOf(tensor, "allreduce");
  if (op == ReduceOp::Average && !at::isFloatingType(tensor.scalar_type())) {
    throw CommError(
        "allreduce: cannot average " + std::string(c10::toString(tensor.scalar_type())) + " values",
        "use ReduceOp::Sum for integer tensors and divide afterwards", rank());
  }
  torch::Tensor data = onDevice(tensor, "allreduce");
  // ReduceOp::Average's definition: each rank scales, then the sum. Queued on the compute
  // stream, which the NCCL stream waits for (see launch).
  if (op == ReduceOp::Average) data.mul_(1.0 / size());
  std::function<void()> finish;
  if (!data.is_same(tensor)) finish = [tensor, data]() mutable { tensor.copy_(data); };
  const auto count = static_cast<size_t>(data.numel());
  void* ptr = data.data_ptr();
  return launch("allreduce(" + tag + ", " + formatBytes(tensorBytes(tensor)) + ", nccl)", {data},
                std::move(finish), "ncclAllReduce", [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclAllReduce(ptr, ptr, count, type, ncclSum, comm, stream);
                });
}

WorkPtr NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  const ncclDataType_t type = dataTypeOf(tensor, "broadcast");
  if (root < 0 || root >= size()) {
    throw CommError("broadcast: root " + std::to_string(root) + " is not a rank of a world of " +
                        std::to_string(size()),
                    {}, rank());
  }
  torch::Tensor data = onDevice(tensor, "broadcast");
  std::function<void()> finish;
  if (!data.is_same(tensor)) finish = [tensor, data]() mutable { tensor.copy_(data); };
  const auto count = static_cast<size_t>(data.numel());
  void* ptr = data.data_ptr();
  return launch("broadcast(" + formatBytes(tensorBytes(tensor)) + " from rank " +
                    std::to_string(root) + ", nccl)",
                {data}, std::move(finish), "ncclBroadcast",
                [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclBroadcast(ptr, ptr, count, type, root, comm, stream);
                });
}

WorkPtr NcclCommunicator::allgather(const torch::Tensor& input, torch::Tensor& output) {
  const ncclDataType_t type = dataTypeOf(input, "allgather");
  if (input.scalar_type() != output.scalar_type() || output.numel() != input.numel() * size()) {
    throw CommError("allgather: output must have the input's dtype and " + std::to_string(size()) +
                        " x " + std::to_string(input.numel()) + " elements, got " +
                        std::to_string(output.numel()),
                    {}, rank());
  }
  torch::Tensor in = onDevice(input, "allgather");
  torch::Tensor out;
  std::function<void()> finish;
  if (output.is_cuda()) {
    out = onDevice(output, "allgather");
  } else {
    if (!output.is_contiguous()) {
      throw CommError("allgather: output is not contiguous", "call .contiguous() first", rank());
    }
    out =
        torch::empty(output.sizes(), output.options().device(torch::Device(
                                         torch::kCUDA, static_cast<torch::DeviceIndex>(device_))));
    finish = [output, out]() mutable { output.copy_(out); };
  }
  const auto count = static_cast<size_t>(in.numel());
  const void* send = in.data_ptr();
  void* recv = out.data_ptr();
  return launch("allgather(" + formatBytes(tensorBytes(input)) + " per rank, nccl)", {in, out},
                std::move(finish), "ncclAllGather", [&](ncclComm_t comm, cudaStream_t stream) {
                  return ncclAllGather(send, recv, count, type, comm, stream);
                });
}

void NcclCommunicator::barrier() {
  // Non-blocking barrier polled against the deadline: a dead peer becomes a TimeoutError, not
  // a hang.
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Ibarrier(mpi_.get(), &request), "MPI_Ibarrier", rank());
  const auto deadline = Clock::now() + blockingTimeout_;
  auto pause = std::chrono::microseconds(10);
  for (;;) {
    int done = 0;
    checkMpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test(barrier)", rank());
    if (done) return;
    if (Clock::now() >= deadline) {
      throw TimeoutError("barrier did not complete within " +
                             std::to_string(blockingTimeout_.count() / 1000) + " s on rank " +
                             std::to_string(rank()),
                         "another rank is stuck or dead; check the other ranks' logs", rank());
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

std::unique_ptr<Communicator> createNcclCommunicator(MPI_Comm comm,
                                                     std::chrono::milliseconds blockingTimeout) {
  return std::make_unique<NcclCommunicator>(comm, blockingTimeout);
}

int cudaDeviceCount(std::string* error) {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    if (error) *error = cudaGetErrorString(rc);
    cudaGetLastError();  // not sticky: clear it for later checks
    return 0;
  }
  return count;
}

std::string ncclLibraryVersion() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return "unknown";
  // NCCL_VERSION(X,Y,Z) is X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z from 2.9 on.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? (code % 10000) / 100 : (code % 1000) / 100;
  const int patch = code % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

int ncclDeviceOf(const Communicator& comm) {
  const auto* nccl = dynamic_cast<const NcclCommunicator*>(&comm);
  return nccl ? nccl->device() : -1;
}

}  // namespace ringtrain
