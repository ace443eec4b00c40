// The Communicator interface: what the trainer needs from a collective backend.
//
// Modelled on c10d: a small set of collectives, each asynchronous, returning a Work handle
// that the caller waits on with a deadline. Backends ("mpi", "ring", later "nccl") are
// chosen at run time by name (see makeCommunicator). Tensors must be contiguous; in-place
// operations overwrite their argument.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "collectives/chunks.h"
#include "collectives/link_waits.h"

namespace ringtrain {

// When a collective ran, on the steady clock: `started` when the backend began it (after
// whatever was queued before it), `completed` when it finished. Read by the timeline.
struct WorkTimes {
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point completed;
};

// Handle for an in-flight collective.
class Work {
 public:
  virtual ~Work() = default;
  // True once the operation finished (successfully or not).
  virtual bool isCompleted() = 0;
  // Blocks until completion. Rethrows the operation's error (CommError). Throws
  // TimeoutError, naming the operation, if it has not completed within `timeout`.
  virtual void wait(std::chrono::milliseconds timeout) = 0;
  // Short description for error messages, e.g. "allreduce(bucket 3, 6.3 MB)".
  virtual std::string describe() const = 0;
  // When the operation ran, once it has completed; empty before, and where the backend cannot
  // tell (a GPU stream's work: the waiter's return is then the best estimate).
  virtual std::optional<WorkTimes> times() const { return std::nullopt; }
};

using WorkPtr = std::shared_ptr<Work>;

// How allreduce combines the ranks' tensors (c10d's ReduceOp, NCCL's ncclRedOp_t).
enum class ReduceOp {
  Sum,
  // The mean, for floating dtypes: bitwise as if every rank had first called
  // tensor.mul_(1.0 / size()) and then summed, on every backend. A backend may fold the
  // multiplication into its reduction (the shared-memory all-reduce does, saving a pass).
  Average,
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backendName() const = 0;
  // How allreduce() moves the buffers allocateBuffer() has handed out so far, for the
  // start-up line: the backend's name, with the path it chose at run time where it has a
  // choice (the ring: shared memory, hierarchical, or messages).
  virtual std::string allreducePath() const { return backendName(); }
  // Time blocked on this rank's ring neighbours since the communicator was made (see
  // link_waits.h); all zero, with no peers, for a backend that runs no ring of its own.
  virtual LinkWaits linkWaits() const { return {}; }

  // Element-wise sum (or average) across ranks, in place. `tag` names the operation in
  // timeout messages.
  virtual WorkPtr allreduce(torch::Tensor& tensor, const std::string& tag = "allreduce",
                            ReduceOp op = ReduceOp::Sum) = 0;
  // Copies root's tensor into every rank's tensor (same shape and dtype on all ranks).
  virtual WorkPtr broadcast(torch::Tensor& tensor, int root) = 0;
  // output = concatenation of every rank's input along a new leading dimension of size();
  // output must have size() * input.numel() elements.
  virtual WorkPtr allgather(const torch::Tensor& input, torch::Tensor& output) = 0;
  // The halves of allreduce, for sharded optimizer state (ZeRO-1). Rank r's shard of a
  // tensor is its elements shardOf(numel, size(), r) (collectives/chunks.h); every rank
  // passes a tensor of the same numel and dtype.
  //
  // Reduces like allreduce(tensor, tag, op), but only this rank's shard is sure to hold the
  // result afterwards (bitwise what allreduce gives there); the rest is unspecified. This
  // default all-reduces the whole tensor; the ring backend sends half as many bytes.
  virtual WorkPtr reduceScatter(torch::Tensor& tensor, const std::string& tag = "reduce-scatter",
                                ReduceOp op = ReduceOp::Sum) {
    return allreduce(tensor, tag, op);
  }
  // Copies every rank's shard of `tensor` into the others', in place: afterwards every rank
  // holds the concatenation. This default pads the shards to one size and calls allgather.
  virtual WorkPtr allgatherShards(torch::Tensor& tensor, const std::string& tag = "all-gather");

  // Blocks until every rank has entered the barrier.
  virtual void barrier() = 0;

  // Zeroed memory for a 1-D tensor that will be all-reduced again and again (a gradient
  // bucket). A backend may place it where its all-reduce needs no copy: the ring backend with
  // all ranks on one node puts it in a shared-memory window, valid until the communicator is
  // destroyed. Collective: every rank allocates the same sizes in the same order, and uses
  // each buffer in the same collectives. This default is plain torch::zeros.
  virtual torch::Tensor allocateBuffer(int64_t numel, const torch::TensorOptions& options) {
    return torch::zeros({numel}, options);
  }
};

}  // namespace ringtrain
