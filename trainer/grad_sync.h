// Gradient synchronisation for all-reduce mode.
//
// Gradients are packed into persistent flat buckets of about `bucketMb` megabytes, filled
// in reverse order of parameter registration (the order in which backward produces them;
// the first bucket is smaller, as DDP does, so communication can start early). Each
// gradient is divided by the world size while it is copied in, so the all-reduced bucket
// holds the average. One all-reduce per bucket; results are copied back into the .grad
// tensors. A parameter that received no gradient this step contributes zeros (every rank
// must contribute the same bucket layout, or the collective would mismatch).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace ringtrain {

struct BucketLayout {
  std::vector<size_t> parameterIndices;  // into the parameter list, in fill order
  std::vector<int64_t> offsets;          // element offset of each parameter in the bucket
  int64_t numel = 0;
  torch::ScalarType dtype = torch::kFloat32;
};

// Assigns parameters (given in registration order) to buckets. Pure function: every rank
// computes the same layout from the same model.
std::vector<BucketLayout> planBuckets(const std::vector<torch::Tensor>& parameters,
                                      double bucketMb, double firstBucketMb = 1.0);

class GradientSynchronizer {
 public:
  GradientSynchronizer(Communicator& comm, std::vector<torch::Tensor> parameters,
                       double bucketMb, std::chrono::milliseconds timeout);

  // Averages the .grad of every parameter across ranks, in place. `step` is used in
  // timeout messages only.
  void synchronize(int64_t step);

  const std::vector<BucketLayout>& layout() const { return layout_; }

 private:
  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<BucketLayout> layout_;
  std::vector<torch::Tensor> buckets_;
  std::chrono::milliseconds timeout_;
};

}  // namespace ringtrain
