// Dataset interface: random access to samples by index. The sharding layer decides which
// indices a rank reads at each step; a Dataset only knows how to gather them.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace ringtrain {

struct Batch {
  torch::Tensor inputs;   // [batch, ...] float32
  torch::Tensor targets;  // [batch] or [batch, ...] int64 class indices
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Gathers the samples at `indices` (each in [0, size())) into one batch, in order.
  virtual Batch get(const std::vector<int64_t>& indices) const = 0;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

}  // namespace ringtrain
