// Gradient synchronisation for all-reduce mode.
//
// Bucketing: gradients live in persistent flat buckets of about `bucketMb` megabytes, filled
// in reverse order of parameter registration (the order in which backward produces them; the
// first bucket is smaller, as DDP does, so communication can start early). One all-reduce per
// bucket. Each gradient is divided by the world size before it is sent, so the all-reduced
// bucket holds the average.
//
// Bucket memory comes from Communicator::allocateBuffer: with the ring backend on one node it
// is an MPI shared-memory window, summed in place by the shared-memory all-reduce (bitwise the
// ring's sums; docs/algorithms.md). The destructor gives every .grad that is still a bucket
// slice its own copy, since the parameters outlive the buckets.
//
// Gradients as bucket slices: for an uncompressed bucket, each parameter's .grad *is* its
// slice of the bucket (set at construction, like DDP's gradient_as_bucket_view), so autograd
// accumulates straight into the bucket, the bucket is all-reduced with ReduceOp::Average
// (the 1/N scale applied by the communicator: one pass over the bucket, or none at all where
// the shared-memory all-reduce folds it into its reduction), and the average lands in .grad
// with no copy in or out. The two copies this saves cost about 0.25 ms of a
// 2.2 ms fashion_mlp step at np 2 (bench/RESULTS.md). If .grad is replaced (LibTorch 2.x's
// zero_grad sets it to none; a user may assign it), the next pack copies it in and points
// .grad back at the slice. A slice is never written by autograd while its bucket is on the
// wire: a gradient arriving then throws (see prepareBackward). Compressed buckets (16-bit on
// the wire) are packed by a scaling cast and copied back after the all-reduce.
//
// Overlap: with `overlap`, a hook on every parameter's gradient accumulator copies the
// accumulated .grad into the bucket the moment backward has produced it, and a bucket's
// all-reduce is queued on the communicator's thread as soon as its last gradient arrived,
// while backward continues. (The hook runs after autograd's addition into .grad, as DDP's
// does; see trainer/allreduce/grad_hooks.h for why not a tensor hook.) Buckets are always
// launched in index order (bucket b only after b-1), because the communicator runs collectives
// FIFO and every rank must issue them in the same order; a bucket that completes early waits
// for its predecessors. synchronize() launches whatever backward did not complete and waits.
// Rule for callers: issue no other collective on the communicator between the backward that
// synchronises and synchronize(). Ranks may complete different numbers of buckets during
// backward (a rank that leaves a parameter without a gradient sends its bucket later), so a
// collective queued in between would sit at different positions of the FIFO on different
// ranks and pair up with a gradient bucket.
//
// Parameters without a gradient: a parameter that got no gradient this step contributes its
// accumulated .grad from earlier micro-batches if it has one, else zeros, and receives the
// average like any other (so every rank sends the same bucket layout and no step can hang on
// a gradient that never comes). After synchronize() every such parameter has a defined .grad.
// Parameters that do not require grad (frozen) are not synchronised at all.
//
// Accumulation: prepareBackward(false) before the backward of every micro-batch but the last
// keeps the hooks passive (gradients only accumulate in .grad, like DDP's no_sync); the last
// micro-batch's hooks pack the accumulated .grad / N. A parameter's second gradient after it
// was packed (two backward passes without prepareBackward(step, false)) throws TrainingError.
//
// Compression: with bf16 or fp16 the buckets themselves have the 16-bit type: gradients are
// cast while being scaled in, reduced in 16 bits on the wire, and cast back on the copy out.
// The 1/N scale applied before the cast bounds every partial sum of the ring by the largest
// per-rank gradient, so fp16 cannot overflow during the reduction unless a rank's own
// gradient already exceeds fp16's range (|g| / N > 65504). Such a value becomes inf on every
// rank alike, and the trainer's non-finite gradient check then skips or aborts the step
// consistently. Values below fp16's subnormal range (about 6e-8 after the 1/N scale) flush to
// zero; prefer bf16 (float32's range) when gradients are tiny.
//
// Reproducibility: overlap changes when buckets are packed and sent, never what is packed,
// summed or in which order, so overlapped and post-backward synchronisation with the same bucket
// layout give bitwise identical gradients. The ring's summation order of an element depends on the
// chunk it falls in, and chunks are cut per bucket; a different bucket_mb therefore changes
// the order of additions (bitwise equal only up to two ranks, where a + b == b + a exactly).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/allreduce/grad_hooks.h"

namespace ringtrain {

struct BucketLayout {
  std::vector<size_t> parameterIndices;  // into the parameter list, in fill order
  std::vector<int64_t> offsets;          // element offset of each parameter in the bucket
  int64_t numel = 0;
  torch::ScalarType dtype = torch::kFloat32;  // of the parameters (the wire type may differ)
  torch::Device device = torch::kCPU;
};

// Assigns parameters (given in registration order) to buckets. Pure function: every rank
// computes the same layout from the same model. A bucket never mixes dtypes or devices.
std::vector<BucketLayout> planBuckets(const std::vector<torch::Tensor>& parameters, double bucketMb,
                                      double firstBucketMb = 1.0);

enum class GradCompression { None, BFloat16, Float16 };

// "none" | "bf16" | "fp16" (distributed.compression). Throws ConfigError for anything else.
GradCompression parseGradCompression(const std::string& name);

struct GradSyncOptions {
  double bucketMb = 25.0;
  double firstBucketMb = 1.0;
  bool overlap = true;
  GradCompression compression = GradCompression::None;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // ZeRO-1 (trainer/allreduce/zero_optimizer.h): reduce-scatter the buckets instead of
  // all-reducing them. After synchronize() only this rank's shard of each bucket
  // (shardOf(bucket numel, size, rank)) of the .grad values is the average; the rest is
  // unspecified, and the sharded optimizer reads only its shard.
  bool reduceScatter = false;
};

// When one bucket's collective of the last synchronised step ran (recordTimings on).
struct BucketTiming {
  size_t bucket = 0;
  int64_t bytes = 0;      // on the wire
  bool fromHook = false;  // launched by backward's hook (overlap), else by synchronize()
  std::chrono::steady_clock::time_point launched;  // handed to the communicator
  std::optional<WorkTimes> ran;                    // as the backend saw it, where it can tell
  std::chrono::steady_clock::time_point waited;    // synchronize() had it back
};

class GradientSynchronizer {
 public:
  GradientSynchronizer(Communicator& comm, std::vector<torch::Tensor> parameters,
                       GradSyncOptions options);
  // Post-backward synchronisation (no overlap, no compression).
  GradientSynchronizer(Communicator& comm, std::vector<torch::Tensor> parameters, double bucketMb,
                       std::chrono::milliseconds timeout);
  // Removes the hooks and gives every .grad that is still a bucket slice its own copy: the
  // parameters outlive the synchronizer and its buckets.
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  // Declares the next backward pass: `synchronizeAfter` false for an accumulation micro-batch
  // (its gradients stay local), true for the last micro-batch of step `step`. Without a call,
  // every backward counts as the last one of its step. A second backward that reaches a
  // parameter already packed for this step throws TrainingError (its gradient would be lost
  // or mixed into a bucket on the wire).
  void prepareBackward(int64_t step, bool synchronizeAfter);

  // Averages the .grad of every parameter across ranks, in place: launches the buckets that
  // backward did not complete and waits for all of them (TimeoutError after the timeout).
  // `step` is used in messages only.
  void synchronize(int64_t step);

  const std::vector<BucketLayout>& layout() const { return layout_; }
  // The flat bucket that holds bucket b's .grad values (each .grad is a view of it), or an
  // undefined tensor where .grad is a copy (compressed buckets, one rank). The sharded
  // optimizer all-gathers the parameters through it once the step's gradients are used.
  torch::Tensor gradientBucket(size_t b) const {
    return gradIsSlot(b) ? buckets_[b] : torch::Tensor();
  }
  bool overlapping() const { return hooks_ && !hooks_->empty(); }
  // Buckets of the last synchronised step that backward's hooks launched (the rest were
  // launched by synchronize()). For tests and diagnostics.
  int64_t bucketsLaunchedDuringBackward() const { return launchedDuringBackward_; }
  // Off by default (then nothing is timed): the timeline turns it on for its steps.
  void recordTimings(bool on);
  // One entry per bucket of the last synchronised step, in bucket order (empty when off, or
  // with one rank: nothing is sent).
  const std::vector<BucketTiming>& lastTimings() const { return lastTimings_; }

 private:
  void allocateBuckets();
  void onGradientAccumulated(size_t param);
  // Whether the parameters of `bucket` have their .grad inside the bucket (no copy in or
  // out): uncompressed buckets with more than one rank.
  bool gradIsSlot(size_t bucket) const;
  void packFromGrad(size_t param);
  void launchCompletedBuckets();
  void launch(size_t bucket, bool fromHook);
  void resetRound();

  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  GradSyncOptions options_;
  std::vector<BucketLayout> layout_;
  std::vector<torch::Tensor> buckets_;    // flat, in the wire dtype
  std::vector<torch::Tensor> slotViews_;  // per parameter: its slice, shaped like it (and
                                          // its .grad where gradIsSlot)
  std::vector<size_t> bucketOf_;          // per parameter
  torch::Tensor scale_;                   // 0-dim: 1 / world size

  // State of the current round (one optimizer step); guarded by mutex_ since autograd may run
  // hooks on a device thread.
  std::mutex mutex_;
  bool syncAfterBackward_ = true;
  int64_t step_ = 0;
  std::vector<char> ready_;         // per parameter: packed this round
  std::vector<size_t> readyCount_;  // per bucket
  std::vector<WorkPtr> works_;      // per bucket, null until launched
  size_t nextLaunch_ = 0;
  int64_t hookLaunches_ = 0;            // this round
  int64_t launchedDuringBackward_ = 0;  // last completed round
  bool recordTimings_ = false;
  std::vector<BucketTiming> timings_;      // this round, per bucket
  std::vector<BucketTiming> lastTimings_;  // last completed round

  std::unique_ptr<AccumulatedGradHooks> hooks_;  // last: removed first
};

}  // namespace ringtrain
