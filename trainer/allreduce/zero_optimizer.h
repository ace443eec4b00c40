// ZeRO-1 (distributed.zero: 1): optimizer state sharded over the ranks.
//
// Plain all-reduce training keeps the whole optimizer state on every rank (SGD's momentum:
// one copy of the parameters; Adam's moments: two). Here rank r keeps it only for its shard
// of every gradient bucket, shardOf(bucket numel, N, r) (collectives/chunks.h): about 1/N.
// A step is then
//   1. the buckets are reduce-scattered instead of all-reduced (GradSyncOptions::
//      reduceScatter): rank r receives only its shard's averaged gradients, half the ring's
//      bytes, overlapped with backward as before;
//   2. the global gradient norm is the square root of the all-reduced sum of every shard's
//      squares (one scalar), for clipping and the non-finite check;
//   3. rank r steps a LibTorch optimizer (the configured SGD / Adam / AdamW) over its flat
//      parameter shards; these optimizers are element-wise, so a shard's update is the
//      plain optimizer's on those elements;
//   4. every bucket's parameters are all-gathered (Communicator::allgatherShards, the ring's
//      other half) and copied into the replica's parameters. The all-gather runs in the
//      gradient bucket itself, whose gradients are used by then (the next zero_grad clears
//      it), so no second copy of the parameters is kept; only where .grad is not a view of
//      its bucket (bf16/fp16 compression) a flat parameter buffer is allocated instead.
// On the ring the reduce-scatter is exactly the first half of the all-reduce, so the
// averaged gradients are bitwise plain training's; the global norm is summed in another order
// (float64), so a clipped step may differ in the last bits.
//
// Checkpoints hold the whole state, per parameter, in the plain optimizer's format:
// exportState() gathers the shards into the replica's (otherwise empty) optimizer before a
// checkpoint, and importState() takes this rank's shard from it after a load. So a ZeRO-1
// checkpoint resumes at any world size (the elastic resume), with or without ZeRO, and loads
// like any other. The price: the whole state exists on every rank for the moment of a save
// and of a resume.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/allreduce/grad_sync.h"
#include "trainer/config/config.h"
#include "trainer/optim/optimizer.h"

namespace ringtrain {

class ShardedOptimizer {
 public:
  // `gradients` reduce-scatters `parameters`' gradients (GradSyncOptions::reduceScatter) and
  // outlives this. Collective (may allocate buffers through the communicator).
  ShardedOptimizer(const OptimizerConfig& cfg, Communicator& comm,
                   std::vector<torch::Tensor> parameters, const GradientSynchronizer& gradients,
                   std::chrono::milliseconds timeout);

  // Copies this rank's shard of the averaged gradients out of the parameters' .grad.
  void loadGradients();
  // The L2 norm of all gradients across the shards. Collective.
  double gradientNorm();
  // Scales the shards' gradients by min(1, maxNorm / (norm + 1e-6)), as clip_grad_norm_.
  void clipGradients(double maxNorm, double norm);
  // Steps the shards at `lr`, then all-gathers the parameters into every replica. Collective.
  void step(double lr);

  // Takes this rank's shard of `full`'s state (a checkpoint's, loaded into the replica's own
  // optimizer over the whole model) and empties `full`. Nothing when `full` has no state.
  void importState(torch::optim::Optimizer& full);
  // Puts the state of all shards, per parameter, into `full` (which must be empty). Collective.
  void exportState(torch::optim::Optimizer& full);

  // Bytes of this rank's optimizer state.
  int64_t stateBytes() { return optimizerStateBytes(*optimizer_); }

 private:
  struct Shard {
    RingChunk range;      // of the bucket, in elements
    torch::Tensor whole;  // the all-gather's buffer: the gradient bucket, or a buffer of its own
    torch::Tensor param;  // this rank's parameters of the range: what the optimizer updates
    torch::Tensor grad;   // their averaged gradients (whole's range, where whole is the bucket)
    bool gradInWhole = false;
  };
  // Calls f(parameter index, its offset in the bucket's flat view, the shard's offset, length)
  // for every parameter of bucket b that overlaps the shard.
  template <typename F>
  void forEachOverlap(size_t b, F&& f) const;

  const OptimizerConfig& cfg_;
  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<BucketLayout> layout_;
  std::chrono::milliseconds timeout_;
  std::vector<Shard> shards_;  // one per bucket
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace ringtrain
