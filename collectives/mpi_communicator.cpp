#include "collectives/mpi_communicator.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>

#include "collectives/gpu_backend.h"
#include "collectives/hierarchical_allreduce.h"
#include "collectives/shm_allreduce.h"
#include "core/error.h"
#include "core/faults.h"
#include "core/names.h"

namespace ringtrain {
namespace {

// MPI counts are int: large buffers go through MPI in pieces of at most this many elements.
constexpr std::int64_t kMaxMpiCount = std::int64_t{1} << 30;

void sumBFloat16Op(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  reduceSum(inout, in, *len, RingDtype::BFloat16);
}

void sumFloat16Op(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  reduceSum(inout, in, *len, RingDtype::Float16);
}

bool toRingDtype(at::ScalarType type, RingDtype* out) {
  switch (type) {
    case at::kFloat:
      *out = RingDtype::Float32;
      return true;
    case at::kDouble:
      *out = RingDtype::Float64;
      return true;
    case at::kInt:
      *out = RingDtype::Int32;
      return true;
    case at::kLong:
      *out = RingDtype::Int64;
      return true;
    case at::kBFloat16:
      *out = RingDtype::BFloat16;
      return true;
    case at::kHalf:
      *out = RingDtype::Float16;
      return true;
    default:
      return false;
  }
}

std::string formatBytes(std::int64_t bytes) {
  char text[32];
  if (bytes >= (std::int64_t{1} << 20)) {
    std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(text, sizeof(text), "%.1f KB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(text, sizeof(text), "%lld B", static_cast<long long>(bytes));
  }
  return text;
}

// Where Open MPI keeps shared-memory windows: files in its osc_sm_backing_directory.
std::string windowBackingDirectory() {
  const char* dir = std::getenv("OMPI_MCA_osc_sm_backing_directory");
  return dir && *dir ? dir : "/dev/shm";
}

// Free bytes on the filesystem holding `dir`, or -1 if that cannot be told.
std::int64_t freeBytes(const std::string& dir) {
  struct statvfs info {};
  if (statvfs(dir.c_str(), &info) != 0) return -1;
  return static_cast<std::int64_t>(info.f_bavail) * static_cast<std::int64_t>(info.f_frsize);
}

std::int64_t tensorBytes(const torch::Tensor& t) {
  return static_cast<std::int64_t>(t.numel()) * static_cast<std::int64_t>(t.element_size());
}

}  // namespace

MpiUserOp::MpiUserOp(MPI_User_function* function) {
  checkMpi(MPI_Op_create(function, /*commute=*/1, &op_), "MPI_Op_create");
}

MpiUserOp::~MpiUserOp() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised && op_ != MPI_OP_NULL) MPI_Op_free(&op_);
}

MpiCommunicator::MpiCommunicator(MPI_Comm parent, AllreduceAlgorithm algorithm,
                                 std::chrono::milliseconds blockingTimeout, bool sharedMemory)
    : comm_(parent),
      algorithm_(algorithm),
      blockingTimeout_(blockingTimeout),
      sumBFloat16_(&sumBFloat16Op),
      sumFloat16_(&sumFloat16Op),
      thread_(comm_.rank()) {
  // A timeout names the host of the rank it waited for, where the ranks span several.
  hostOfRank_ = hostNamesOf(comm_.get());
  if (std::all_of(hostOfRank_.begin(), hostOfRank_.end(),
                  [&](const std::string& h) { return h == hostOfRank_.front(); })) {
    hostOfRank_.clear();
  }
  if (algorithm_ != AllreduceAlgorithm::Ring || !sharedMemory || comm_.size() == 1) return;
  MpiComm node = nodeCommOf(comm_.get());
  if (node.size() == comm_.size()) {  // one node: then on every rank
    node_ = std::make_unique<MpiComm>(std::move(node));
    return;
  }
  // Several nodes: the hierarchical all-reduce needs the same number of ranks on each, and
  // more than one (with one rank per node there is nothing to share). All ranks agree.
  std::optional<MpiComm> across = acrossCommOf(comm_.get(), node);
  if (!across) return;
  across_ = std::make_unique<MpiComm>(std::move(*across));
  nodeRankNames_ = rankNamesOf(node.get());
  acrossRankNames_ = rankNamesOf(across_->get());
  nodeHosts_ = hostNamesOf(across_->get());
  node_ = std::make_unique<MpiComm>(std::move(node));
}

std::vector<int> MpiCommunicator::rankNamesOf(MPI_Comm sub) const {
  int subSize = 0;
  checkMpi(MPI_Comm_size(sub, &subSize), "MPI_Comm_size", rank());
  std::vector<int> names(static_cast<std::size_t>(subSize));
  int me = rank();
  checkMpi(MPI_Allgather(&me, 1, MPI_INT, names.data(), 1, MPI_INT, sub), "MPI_Allgather (ranks)",
           rank());
  return names;
}

std::string MpiCommunicator::backendName() const {
  return algorithm_ == AllreduceAlgorithm::Ring ? "ring" : "mpi";
}

std::string MpiCommunicator::allreducePath() const {
  if (size() == 1) return backendName();  // nothing to reduce
  if (algorithm_ == AllreduceAlgorithm::Mpi) return "mpi (MPI_Allreduce)";
  bool shared = false;
  {
    std::lock_guard<std::mutex> lock(windowsMutex_);
    shared = !windows_.empty();
  }
  if (!shared) return "ring (MPI messages)";
  if (!across_) return "ring (shared memory, one node)";
  // The hosts as MPI names them; nodes cut from one host (RINGTRAIN_RANKS_PER_NODE) say so.
  const bool oneHost = std::all_of(nodeHosts_.begin(), nodeHosts_.end(),
                                   [&](const std::string& h) { return h == nodeHosts_.front(); });
  const std::string hosts =
      oneHost ? "cut from host " + nodeHosts_.front() + " by RINGTRAIN_RANKS_PER_NODE"
              : "on hosts " + joinNames(nodeHosts_);
  return "ring (hierarchical: " + std::to_string(size() / node_->size()) + " nodes x " +
         std::to_string(node_->size()) + " ranks " + hosts +
         ", shared memory inside, rings between)";
}

void MpiCommunicator::checkTensor(const torch::Tensor& tensor, const char* op) const {
  const std::string where = std::string(op) + ": ";
  if (!tensor.defined()) throw CommError(where + "tensor is undefined", {}, rank());
  if (!tensor.device().is_cpu()) {
    throw CommError(where + "tensor is on " + tensor.device().str() + ", but backend '" +
                        backendName() + "' handles CPU tensors only",
                    "use backend nccl for GPU tensors, or move the tensor to the CPU", rank());
  }
  if (!tensor.is_contiguous()) {
    throw CommError(where + "tensor is not contiguous", "call .contiguous() first", rank());
  }
}

RingDtype MpiCommunicator::reducibleDtype(const torch::Tensor& tensor, ReduceOp op,
                                          const char* what) const {
  checkTensor(tensor, what);
  RingDtype dtype{};
  if (!toRingDtype(tensor.scalar_type(), &dtype)) {
    throw CommError(std::string(what) + ": dtype " +
                        std::string(c10::toString(tensor.scalar_type())) + " is not supported",
                    "use float32, float64, int32, int64, bfloat16 or float16", rank());
  }
  if (op == ReduceOp::Average && !isFloating(dtype)) {
    throw CommError(std::string(what) + ": cannot average " + dtypeName(dtype) + " values",
                    "use ReduceOp::Sum for integer tensors and divide afterwards", rank());
  }
  return dtype;
}

RingOptions MpiCommunicator::ringOptions(RingPhases phases) {
  RingOptions options;
  if (!hostOfRank_.empty() && size() == 2) options.segmentBytes = kSegmentBytesTwoHostRing;
  options.progress = &progress_;
  options.workspace = &workspace_;
  options.phases = phases;
  return options;
}

WorkPtr MpiCommunicator::allreduce(torch::Tensor& tensor, const std::string& tag, ReduceOp op) {
  const RingDtype dtype = reducibleDtype(tensor, op, "allreduce");
  const std::string description = "allreduce(" + tag + ", " + formatBytes(tensorBytes(tensor)) +
                                  ", " + backendName() +
                                  (op == ReduceOp::Average ? ", average)" : ")");
  torch::Tensor keep = tensor;  // holds the storage alive until the thread is done with it
  const std::int64_t count = tensor.numel();
  // Every rank's share of the average, applied before the sum (ReduceOp's definition).
  const double scale = op == ReduceOp::Average ? 1.0 / size() : 1.0;
  if (SharedWindow* window = windowOf(tensor)) {
    const std::int64_t offset =
        static_cast<const unsigned char*>(tensor.data_ptr()) - window->part(window->rank());
    return thread_.enqueue(
        description,
        [this, keep, window, offset, count, dtype, scale] {
          if (across_) {
            hierarchicalAllreduce(*window, offset, count, dtype, across_->get(), workspace_,
                                  &progress_, scale, &acrossRankNames_);
          } else {
            shmAllreduce(*window, offset, count, dtype, workspace_, &progress_, scale);
          }
        },
        [this] { return progress_.describe(hostOfRank_); });
  }
  if (algorithm_ == AllreduceAlgorithm::Ring) {
    return thread_.enqueue(
        description,
        [this, keep, count, dtype, scale] {
          if (scale != 1.0) scaleInPlace(keep.data_ptr(), count, dtype, scale);
          ringAllreduce(keep.data_ptr(), count, dtype, comm_.get(),
                        ringOptions(RingPhases::AllReduce));
        },
        [this] { return progress_.describe(hostOfRank_); });
  }
  return thread_.enqueue(
      description,
      [this, keep, count, dtype, scale] {
        if (scale != 1.0) scaleInPlace(keep.data_ptr(), count, dtype, scale);
        runMpiAllreduce(keep.data_ptr(), count, dtype);
      },
      [] { return std::string("blocked inside MPI_Allreduce"); });
}

// The hierarchical buffers and MPI_Allreduce have no reduce-scatter of their own here: they
// reduce the whole tensor (Communicator's default), which holds every shard.
WorkPtr MpiCommunicator::reduceScatter(torch::Tensor& tensor, const std::string& tag, ReduceOp op) {
  const RingDtype dtype = reducibleDtype(tensor, op, "reduce-scatter");
  SharedWindow* window = windowOf(tensor);
  if (algorithm_ != AllreduceAlgorithm::Ring || (window && across_)) {
    return allreduce(tensor, tag, op);
  }
  const std::string description = "reduce-scatter(" + tag + ", " +
                                  formatBytes(tensorBytes(tensor)) + ", " + backendName() +
                                  (op == ReduceOp::Average ? ", average)" : ")");
  torch::Tensor keep = tensor;
  const std::int64_t count = tensor.numel();
  const double scale = op == ReduceOp::Average ? 1.0 / size() : 1.0;
  if (window) {
    const std::int64_t offset =
        static_cast<const unsigned char*>(tensor.data_ptr()) - window->part(window->rank());
    return thread_.enqueue(
        description,
        [this, keep, window, offset, count, dtype, scale] {
          shmReduceScatter(*window, offset, count, dtype, workspace_, &progress_, scale);
        },
        [this] { return progress_.describe(hostOfRank_); });
  }
  return thread_.enqueue(
      description,
      [this, keep, count, dtype, scale] {
        if (scale != 1.0) scaleInPlace(keep.data_ptr(), count, dtype, scale);
        ringAllreduce(keep.data_ptr(), count, dtype, comm_.get(),
                      ringOptions(RingPhases::ReduceScatter));
      },
      [this] { return progress_.describe(hostOfRank_); });
}

WorkPtr MpiCommunicator::allgatherShards(torch::Tensor& tensor, const std::string& tag) {
  const RingDtype dtype = reducibleDtype(tensor, ReduceOp::Sum, "all-gather");
  const std::string description =
      "all-gather(" + tag + ", " + formatBytes(tensorBytes(tensor)) + ", " + backendName() + ")";
  torch::Tensor keep = tensor;
  const std::int64_t count = tensor.numel();
  SharedWindow* window = windowOf(tensor);
  if (window && !across_) {
    const std::int64_t offset =
        static_cast<const unsigned char*>(tensor.data_ptr()) - window->part(window->rank());
    return thread_.enqueue(
        description,
        [this, keep, window, offset, count, dtype] {
          shmAllgatherShards(*window, offset, count, dtype, &progress_);
        },
        [this] { return progress_.describe(hostOfRank_); });
  }
  if (algorithm_ == AllreduceAlgorithm::Ring) {
    // Over every rank, also for a hierarchical buffer (its part is this rank's memory).
    return thread_.enqueue(
        description,
        [this, keep, count, dtype] {
          ringAllreduce(keep.data_ptr(), count, dtype, comm_.get(),
                        ringOptions(RingPhases::AllGather));
        },
        [this] { return progress_.describe(hostOfRank_); });
  }
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  if (count * elem > INT_MAX) {
    throw CommError("all-gather: " + formatBytes(count * elem) + " exceeds MPI's 2 GiB limit",
                    "use backend ring, or smaller buckets (distributed.bucket_mb)", rank());
  }
  return thread_.enqueue(
      description,
      [this, keep, count, elem] {
        std::vector<int> counts(static_cast<std::size_t>(size()));
        std::vector<int> displacements(counts.size());
        for (int r = 0; r < size(); ++r) {
          const RingChunk shard = shardOf(count, size(), r);
          counts[static_cast<std::size_t>(r)] = static_cast<int>(shard.length * elem);
          displacements[static_cast<std::size_t>(r)] = static_cast<int>(shard.offset * elem);
        }
        checkMpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, keep.data_ptr(), counts.data(),
                                displacements.data(), MPI_BYTE, comm_.get()),
                 "MPI_Allgatherv", rank());
      },
      [] { return std::string("blocked inside MPI_Allgatherv"); });
}

void MpiCommunicator::runMpiAllreduce(void* data, std::int64_t count, RingDtype dtype) {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPI_Op op = MPI_SUM;
  switch (dtype) {
    case RingDtype::Float32:
      type = MPI_FLOAT;
      break;
    case RingDtype::Float64:
      type = MPI_DOUBLE;
      break;
    case RingDtype::Int32:
      type = MPI_INT32_T;
      break;
    case RingDtype::Int64:
      type = MPI_INT64_T;
      break;
    case RingDtype::BFloat16:
      type = MPI_UINT16_T;
      op = sumBFloat16_.get();
      break;
    case RingDtype::Float16:
      type = MPI_UINT16_T;
      op = sumFloat16_.get();
      break;
  }
  auto* bytes = static_cast<unsigned char*>(data);
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  for (std::int64_t done = 0; done < count; done += kMaxMpiCount) {
    const auto piece = static_cast<int>(std::min(kMaxMpiCount, count - done));
    checkMpi(MPI_Allreduce(MPI_IN_PLACE, bytes + done * elem, piece, type, op, comm_.get()),
             "MPI_Allreduce", rank());
  }
}

WorkPtr MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  checkTensor(tensor, "broadcast");
  if (root < 0 || root >= size()) {
    throw CommError("broadcast: root " + std::to_string(root) + " is not a rank of a world of " +
                        std::to_string(size()),
                    {}, rank());
  }
  torch::Tensor keep = tensor;
  const std::int64_t bytes = tensorBytes(tensor);
  return thread_.enqueue(
      "broadcast(" + formatBytes(bytes) + " from rank " + std::to_string(root) + ")",
      [this, keep, bytes, root] {
        auto* data = static_cast<unsigned char*>(keep.data_ptr());
        for (std::int64_t done = 0; done < bytes; done += kMaxMpiCount) {
          const auto piece = static_cast<int>(std::min(kMaxMpiCount, bytes - done));
          checkMpi(MPI_Bcast(data + done, piece, MPI_BYTE, root, comm_.get()), "MPI_Bcast", rank());
        }
      });
}

WorkPtr MpiCommunicator::allgather(const torch::Tensor& input, torch::Tensor& output) {
  checkTensor(input, "allgather");
  checkTensor(output, "allgather");
  if (input.scalar_type() != output.scalar_type() || output.numel() != input.numel() * size()) {
    throw CommError("allgather: output must have the input's dtype and " + std::to_string(size()) +
                        " x " + std::to_string(input.numel()) + " elements, got " +
                        std::to_string(output.numel()),
                    {}, rank());
  }
  const std::int64_t bytes = tensorBytes(input);
  if (bytes > INT_MAX) {
    throw CommError("allgather: " + formatBytes(bytes) + " per rank exceeds MPI's 2 GiB limit",
                    "gather in smaller pieces", rank());
  }
  torch::Tensor in = input;
  torch::Tensor out = output;
  return thread_.enqueue("allgather(" + formatBytes(bytes) + " per rank)", [this, in, out, bytes] {
    checkMpi(MPI_Allgather(in.data_ptr(), static_cast<int>(bytes), MPI_BYTE, out.data_ptr(),
                           static_cast<int>(bytes), MPI_BYTE, comm_.get()),
             "MPI_Allgather", rank());
  });
}

void MpiCommunicator::barrier() {
  // Queued like every other collective: MPI forbids two threads running collectives on one
  // communicator at once, and the order must match across ranks.
  thread_.enqueue("barrier", [this] { checkMpi(MPI_Barrier(comm_.get()), "MPI_Barrier", rank()); })
      ->wait(blockingTimeout_);
}

torch::Tensor MpiCommunicator::allocateBuffer(int64_t numel, const torch::TensorOptions& options) {
  if (!node_ || !options.device().is_cpu()) return Communicator::allocateBuffer(numel, options);
  const auto bytes = numel * static_cast<std::int64_t>(options.dtype().itemsize());
  // The window is a file in a tmpfs. One too small for every rank's part fails only when a
  // page is first touched, with SIGBUS (Docker's default /dev/shm is 64 MB). So every rank
  // checks the free space, and all fall back to ordinary memory together if any lacks it.
  const std::string dir = windowBackingDirectory();
  const bool fullByFault = processFaults().trigger(FaultPoint::SharedMemorySpace, rank(), 0);
  std::int64_t free = fullByFault ? 0 : freeBytes(dir);           // test-only fault: a full tmpfs
  if (free < 0) free = std::numeric_limits<std::int64_t>::max();  // unknown: assume it fits
  // The least any rank has: the warning names it, whichever rank lacks the room. Over all
  // nodes, because every rank must take the same all-reduce for the buffer.
  checkMpi(MPI_Allreduce(MPI_IN_PLACE, &free, 1, MPI_INT64_T, MPI_MIN, comm_.get()),
           "MPI_Allreduce (shared memory check)", rank());
  const std::int64_t need = bytes * node_->size() + (std::int64_t{1} << 20);
  if (free < need) {
    if (rank() == 0) {
      std::fprintf(stderr,
                   "warning: %s has %s free on some rank, less than the %s these buffers need "
                   "in shared memory; they use the ring's messages instead (slower). HINT: give "
                   "the node a larger %s (e.g. docker run --shm-size=1g), or set "
                   "distributed.shared_memory: false\n",
                   dir.c_str(), formatBytes(free).c_str(), formatBytes(need).c_str(), dir.c_str());
    }
    return Communicator::allocateBuffer(numel, options);
  }
  auto window = std::make_unique<SharedWindow>(node_->get(), bytes, nodeRankNames_);
  // Not owning: the window lives until the communicator is destroyed.
  torch::Tensor buffer = torch::from_blob(window->part(window->rank()), {numel}, options);
  std::lock_guard<std::mutex> lock(windowsMutex_);
  windows_.push_back(std::move(window));
  return buffer;
}

SharedWindow* MpiCommunicator::windowOf(const torch::Tensor& tensor) {
  if (!node_) return nullptr;
  const auto* begin = static_cast<const unsigned char*>(tensor.data_ptr());
  const auto* end = begin + tensorBytes(tensor);
  std::lock_guard<std::mutex> lock(windowsMutex_);
  for (const auto& window : windows_) {
    const unsigned char* part = window->part(window->rank());
    if (begin >= part && end <= part + window->bytes() && tensorBytes(tensor) > 0) {
      return window.get();
    }
  }
  return nullptr;
}

std::unique_ptr<Communicator> makeCommunicator(const std::string& backend, MPI_Comm comm,
                                               std::chrono::milliseconds blockingTimeout,
                                               bool sharedMemory) {
  if (backend == "ring") {
    return std::make_unique<MpiCommunicator>(comm, AllreduceAlgorithm::Ring, blockingTimeout,
                                             sharedMemory);
  }
  if (backend == "mpi") {
    return std::make_unique<MpiCommunicator>(comm, AllreduceAlgorithm::Mpi, blockingTimeout);
  }
  if (backend == "nccl") {
    // The NCCL communicator when built with it; else, or without a GPU, the clear ConfigError.
    return makeNcclCommunicator(comm, blockingTimeout);
  }
  throw ConfigError("unknown communication backend '" + backend + "'",
                    "valid backends: ring, mpi, nccl");
}

}  // namespace ringtrain
