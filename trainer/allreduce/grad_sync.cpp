#include "trainer/allreduce/grad_sync.h"

#include <algorithm>

#include "core/error.h"

namespace ringtrain {

namespace {

// The dtype a bucket travels in: compression narrows floating types wider than 16 bits.
torch::ScalarType wireType(torch::ScalarType paramType, GradCompression compression) {
  const bool wide = at::isFloatingType(paramType) && c10::elementSize(paramType) > 2;
  if (!wide) return paramType;
  switch (compression) {
    case GradCompression::BFloat16:
      return torch::kBFloat16;
    case GradCompression::Float16:
      return torch::kHalf;
    case GradCompression::None:
      break;
  }
  return paramType;
}

// A tensor of `sizes` over `flat`'s memory from element `offset` on. Made with set_ rather
// than as a view (narrow/view), because optimizers detach_() .grad in zero_grad and autograd
// refuses to detach a view in place.
torch::Tensor aliasOf(const torch::Tensor& flat, int64_t offset, at::IntArrayRef sizes) {
  torch::NoGradGuard noGrad;
  return torch::empty({0}, flat.options())
      .set_(flat.storage(), flat.storage_offset() + offset, sizes);
}

GradSyncOptions postBackwardOptions(double bucketMb, std::chrono::milliseconds timeout) {
  GradSyncOptions options;
  options.bucketMb = bucketMb;
  options.overlap = false;
  options.timeout = timeout;
  return options;
}

}  // namespace

std::vector<BucketLayout> planBuckets(const std::vector<torch::Tensor>& parameters, double bucketMb,
                                      double firstBucketMb) {
  std::vector<BucketLayout> buckets;
  const double mib = 1024.0 * 1024.0;
  BucketLayout current;
  double capacityBytes = std::min(firstBucketMb, bucketMb) * mib;
  for (size_t k = parameters.size(); k-- > 0;) {
    const auto& p = parameters[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool kindChanges =
        current.numel > 0 && (p.scalar_type() != current.dtype || p.device() != current.device);
    const bool full = current.numel > 0 && (current.numel * static_cast<int64_t>(p.element_size()) +
                                            bytes) > capacityBytes;
    if (kindChanges || full) {
      buckets.push_back(std::move(current));
      current = BucketLayout();
      capacityBytes = bucketMb * mib;
    }
    current.dtype = p.scalar_type();
    current.device = p.device();
    current.parameterIndices.push_back(k);
    current.offsets.push_back(current.numel);
    current.numel += p.numel();
  }
  if (!current.parameterIndices.empty()) buckets.push_back(std::move(current));
  return buckets;
}

GradCompression parseGradCompression(const std::string& name) {
  if (name == "none") return GradCompression::None;
  if (name == "bf16") return GradCompression::BFloat16;
  if (name == "fp16") return GradCompression::Float16;
  throw ConfigError("unknown gradient compression '" + name + "' (distributed.compression)",
                    "use none, bf16 or fp16");
}

GradientSynchronizer::GradientSynchronizer(Communicator& comm,
                                           std::vector<torch::Tensor> parameters, double bucketMb,
                                           std::chrono::milliseconds timeout)
    : GradientSynchronizer(comm, std::move(parameters), postBackwardOptions(bucketMb, timeout)) {}

GradientSynchronizer::GradientSynchronizer(Communicator& comm,
                                           std::vector<torch::Tensor> parameters,
                                           GradSyncOptions options)
    : comm_(comm), parameters_(std::move(parameters)), options_(options) {
  if (!(options_.bucketMb > 0.0) || !(options_.firstBucketMb > 0.0)) {
    throw ConfigError(
        "gradient bucket sizes must be > 0 MB, got bucket_mb " + std::to_string(options_.bucketMb),
        "set distributed.bucket_mb to e.g. 25", comm_.rank());
  }
  // Frozen parameters are left alone: plan over the trainable ones, then map the indices
  // back to the caller's list.
  std::vector<torch::Tensor> trainable;
  std::vector<size_t> original;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].requires_grad()) continue;
    trainable.push_back(parameters_[i]);
    original.push_back(i);
  }
  layout_ = planBuckets(trainable, options_.bucketMb, options_.firstBucketMb);
  for (auto& bucket : layout_) {
    for (auto& index : bucket.parameterIndices) index = original[index];
  }

  scale_ = torch::scalar_tensor(1.0 / comm_.size(), torch::kFloat64);
  allocateBuckets();
  slotViews_.resize(parameters_.size());
  bucketOf_.assign(parameters_.size(), layout_.size());
  for (size_t b = 0; b < layout_.size(); ++b) {
    const auto& bucket = layout_[b];
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      const size_t k = bucket.parameterIndices[i];
      const auto& p = parameters_[k];
      bucketOf_[k] = b;
      if (gradIsSlot(b)) {
        slotViews_[k] = aliasOf(buckets_[b], bucket.offsets[i], p.sizes());
        // Keep what .grad held (a caller may synchronise gradients computed before).
        if (p.grad().defined()) slotViews_[k].copy_(p.grad());
        parameters_[k].mutable_grad() = slotViews_[k];
      } else {
        slotViews_[k] = buckets_[b].narrow(0, bucket.offsets[i], p.numel()).view(p.sizes());
      }
    }
  }
  ready_.assign(parameters_.size(), 0);
  readyCount_.assign(layout_.size(), 0);
  works_.resize(layout_.size());

  // With one rank there is nothing to overlap: synchronize() is the identity.
  if (options_.overlap && comm_.size() > 1) {
    std::vector<size_t> hooked;
    for (size_t k = 0; k < parameters_.size(); ++k) {
      if (bucketOf_[k] != layout_.size()) hooked.push_back(k);
    }
    hooks_ = std::make_unique<AccumulatedGradHooks>(parameters_, hooked,
                                                    [this](size_t k) { onGradientAccumulated(k); });
  }
}

// The buckets of a device are slices of one allocation from the communicator, which may place
// it in shared memory (all-reduced in place) and then allocates collectively. One call per
// device (in order of first appearance), however many buckets: ranks whose models differ
// still all return from it and reach the fingerprint check that names the difference,
// instead of waiting for an allocation the other ranks never make. With no bucket at all,
// one empty CPU allocation keeps the call count the same on every rank.
void GradientSynchronizer::allocateBuckets() {
  constexpr int64_t kAlign = 64;  // bytes: a cache line, and any dtype's alignment
  std::vector<torch::Device> devices;
  std::vector<int64_t> deviceBytes;
  std::vector<size_t> deviceOf;
  std::vector<int64_t> offsets;  // of each bucket in its device's allocation
  for (const auto& bucket : layout_) {
    const auto at = std::find(devices.begin(), devices.end(), bucket.device);
    const auto d = static_cast<size_t>(at - devices.begin());
    if (at == devices.end()) {
      devices.push_back(bucket.device);
      deviceBytes.push_back(0);
    }
    deviceOf.push_back(d);
    offsets.push_back((deviceBytes[d] + kAlign - 1) / kAlign * kAlign);
    deviceBytes[d] = offsets.back() + bucket.numel * static_cast<int64_t>(c10::elementSize(wireType(
                                                         bucket.dtype, options_.compression)));
  }
  if (devices.empty()) {
    devices.push_back(torch::Device(torch::kCPU));
    deviceBytes.push_back(0);
  }
  const auto bytes = torch::TensorOptions().dtype(torch::kUInt8);
  std::vector<torch::Tensor> memory;
  for (size_t d = 0; d < devices.size(); ++d) {
    memory.push_back(comm_.allocateBuffer(deviceBytes[d], bytes.device(devices[d])));
  }
  for (size_t b = 0; b < layout_.size(); ++b) {
    const auto type = wireType(layout_[b].dtype, options_.compression);
    const int64_t size = layout_[b].numel * static_cast<int64_t>(c10::elementSize(type));
    buckets_.push_back(memory[deviceOf[b]].narrow(0, offsets[b], size).view(type));
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  hooks_.reset();
  // The parameters outlive the buckets, which may be the communicator's memory: a .grad that
  // is still a bucket slice gets its own copy.
  torch::NoGradGuard noGrad;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    if (bucketOf_[k] == layout_.size() || !gradIsSlot(bucketOf_[k])) continue;
    auto& grad = parameters_[k].mutable_grad();
    if (grad.defined() && grad.is_alias_of(slotViews_[k])) grad = grad.clone();
  }
}

void GradientSynchronizer::prepareBackward(int64_t step, bool synchronizeAfter) {
  std::lock_guard<std::mutex> lock(mutex_);
  step_ = step;
  syncAfterBackward_ = synchronizeAfter;
}

// Runs inside backward, right after autograd added this backward's gradient into .grad: the
// packed value is exactly what the post-backward path packs, so both paths send the same bits.
void GradientSynchronizer::onGradientAccumulated(size_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!syncAfterBackward_) return;
  const size_t b = bucketOf_[param];
  if (works_[b]) {
    throw TrainingError("a gradient for parameter #" + std::to_string(param) +
                            " arrived after its bucket " + std::to_string(b) + " was sent (step " +
                            std::to_string(step_) + ")",
                        "with several backward passes per step, keep all but the last local: "
                        "prepareBackward(step, false), or DataParallel's noSync() scope",
                        comm_.rank());
  }
  if (ready_[param]) {
    // Its .grad was already scaled in place (or packed): adding to it would send a mix.
    throw TrainingError("parameter #" + std::to_string(param) + " got a second gradient in step " +
                            std::to_string(step_) + " after it was packed for synchronisation",
                        "with several backward passes per step, keep all but the last local: "
                        "prepareBackward(step, false), or DataParallel's noSync() scope",
                        comm_.rank());
  }
  torch::NoGradGuard noGrad;
  packFromGrad(param);
  ready_[param] = 1;
  ++readyCount_[b];
  launchCompletedBuckets();
}

bool GradientSynchronizer::gradIsSlot(size_t bucket) const {
  return comm_.size() > 1 && buckets_[bucket].scalar_type() == layout_[bucket].dtype;
}

void GradientSynchronizer::packFromGrad(size_t param) {
  auto& grad = parameters_[param].mutable_grad();
  auto& slot = slotViews_[param];
  if (!gradIsSlot(bucketOf_[param])) {
    if (grad.defined()) {
      at::mul_out(slot, grad, scale_);
    } else {
      slot.zero_();
    }
    return;
  }
  // .grad is normally the slot itself; autograd or the caller may have replaced it (an
  // optimizer's zero_grad(set_to_none), a user assigning .grad): copy it in and point .grad
  // back at the slot.
  if (!grad.is_same(slot)) {
    if (grad.defined()) {
      slot.copy_(grad);
    } else {
      slot.zero_();
    }
    grad = slot;
  }
  // The 1/N scale is the all-reduce's (ReduceOp::Average; see launch).
}

void GradientSynchronizer::launchCompletedBuckets() {
  // In index order only: the communicator runs collectives FIFO, so every rank must queue
  // the buckets in the same order even when backward completes them in another.
  while (nextLaunch_ < layout_.size() &&
         readyCount_[nextLaunch_] == layout_[nextLaunch_].parameterIndices.size()) {
    launch(nextLaunch_++, /*fromHook=*/true);
  }
}

void GradientSynchronizer::launch(size_t bucket, bool fromHook) {
  // A bucket of .grad slices still holds the raw gradients: the all-reduce averages them,
  // bitwise as scaling each slice by 1/N and summing would (the shared-memory all-reduce
  // folds the scale into its reduction). A compressed bucket was scaled while it was cast.
  const ReduceOp op = gradIsSlot(bucket) ? ReduceOp::Average : ReduceOp::Sum;
  const std::string tag = "step " + std::to_string(step_) + ", gradient bucket " +
                          std::to_string(bucket + 1) + " of " + std::to_string(layout_.size());
  if (recordTimings_) {
    timings_.resize(layout_.size());
    BucketTiming& timing = timings_[bucket];
    timing.bucket = bucket;
    timing.bytes = buckets_[bucket].numel() * buckets_[bucket].element_size();
    timing.fromHook = fromHook;
    timing.launched = std::chrono::steady_clock::now();
  }
  works_[bucket] = options_.reduceScatter ? comm_.reduceScatter(buckets_[bucket], tag, op)
                                          : comm_.allreduce(buckets_[bucket], tag, op);
  if (fromHook) ++hookLaunches_;
}

void GradientSynchronizer::synchronize(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  step_ = step;
  if (comm_.size() > 1) {
    for (; nextLaunch_ < layout_.size(); ++nextLaunch_) {
      for (const size_t k : layout_[nextLaunch_].parameterIndices) {
        if (!ready_[k]) packFromGrad(k);
      }
      launch(nextLaunch_, /*fromHook=*/false);
    }
  }
  torch::NoGradGuard noGrad;
  for (size_t b = 0; b < layout_.size(); ++b) {
    if (works_[b]) {
      works_[b]->wait(options_.timeout);
      if (recordTimings_ && b < timings_.size()) {
        timings_[b].waited = std::chrono::steady_clock::now();
        timings_[b].ran = works_[b]->times();
      }
    }
    for (const size_t k : layout_[b].parameterIndices) {
      auto& grad = parameters_[k].mutable_grad();
      if (comm_.size() == 1) {
        // The average over one rank is the gradient itself: nothing was packed or sent.
        if (!grad.defined()) grad = torch::zeros_like(parameters_[k]);
        continue;
      }
      if (grad.is_same(slotViews_[k])) continue;  // the bucket holds .grad itself
      if (!grad.defined()) grad = torch::empty_like(parameters_[k]);
      grad.copy_(slotViews_[k]);
    }
  }
  launchedDuringBackward_ = hookLaunches_;
  lastTimings_ = std::move(timings_);
  resetRound();
}

void GradientSynchronizer::recordTimings(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);  // (backward's hooks read it)
  recordTimings_ = on;
  if (!on) lastTimings_.clear();
}

void GradientSynchronizer::resetRound() {
  timings_.clear();
  std::fill(ready_.begin(), ready_.end(), 0);
  std::fill(readyCount_.begin(), readyCount_.end(), 0);
  std::fill(works_.begin(), works_.end(), nullptr);
  nextLaunch_ = 0;
  hookLaunches_ = 0;
  syncAfterBackward_ = true;
}

}  // namespace ringtrain
