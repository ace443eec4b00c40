#include "trainer/grad_sync.h"

#include "trainer/error.h"

namespace ringtrain {

std::vector<BucketLayout> planBuckets(const std::vector<torch::Tensor>& parameters,
                                      double bucketMb, double firstBucketMb) {
  std::vector<BucketLayout> buckets;
  const double mib = 1024.0 * 1024.0;
  BucketLayout current;
  double capacityBytes = std::min(firstBucketMb, bucketMb) * mib;
  for (size_t k = parameters.size(); k-- > 0;) {
    const auto& p = parameters[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool dtypeChanges = current.numel > 0 && p.scalar_type() != current.dtype;
    const bool full = current.numel > 0 &&
                      (current.numel * static_cast<int64_t>(p.element_size()) + bytes) >
                          capacityBytes;
    if (dtypeChanges || full) {
      buckets.push_back(std::move(current));
      current = BucketLayout();
      capacityBytes = bucketMb * mib;
    }
    current.dtype = p.scalar_type();
    current.parameterIndices.push_back(k);
    current.offsets.push_back(current.numel);
    current.numel += p.numel();
  }
  if (current.numel > 0 || !current.parameterIndices.empty()) buckets.push_back(current);
  return buckets;
}

GradientSynchronizer::GradientSynchronizer(Communicator& comm,
                                           std::vector<torch::Tensor> parameters,
                                           double bucketMb, std::chrono::milliseconds timeout)
    : comm_(comm),
      parameters_(std::move(parameters)),
      layout_(planBuckets(parameters_, bucketMb)),
      timeout_(timeout) {
  for (const auto& b : layout_) {
    buckets_.push_back(torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype)));
  }
}

void GradientSynchronizer::synchronize(int64_t step) {
  const double scale = 1.0 / comm_.size();
  std::vector<WorkPtr> works;
  works.reserve(layout_.size());
  for (size_t b = 0; b < layout_.size(); ++b) {
    const auto& bucket = layout_[b];
    auto& flat = buckets_[b];
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      const auto& p = parameters_[bucket.parameterIndices[i]];
      auto slot = flat.narrow(0, bucket.offsets[i], p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
        slot.mul_(scale);
      } else {
        slot.zero_();
      }
    }
    works.push_back(comm_.allreduce(
        flat, "allreduce(step " + std::to_string(step) + ", bucket " + std::to_string(b) + ")"));
  }
  for (size_t b = 0; b < layout_.size(); ++b) {
    works[b]->wait(timeout_);
    const auto& bucket = layout_[b];
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      auto& p = parameters_[bucket.parameterIndices[i]];
      auto slot = buckets_[b].narrow(0, bucket.offsets[i], p.numel()).view(p.sizes());
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(slot);
    }
  }
}

}  // namespace ringtrain
