// Dataset interface: random access to samples by index. The sharding layer decides which
// indices a rank reads at each step; a Dataset only knows how to gather them.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/inputs.h"

namespace ringtrain {

// A dataset's batch holds its inputs either as one tensor (`inputs`) or as named tensors
// (`named`, each [batch, ...]; `inputs` is then left undefined). The model gets them as
// one Inputs value (modelInputs()).
struct Batch {
  Batch() = default;
  Batch(torch::Tensor inputs, torch::Tensor targets)
      : inputs(std::move(inputs)), targets(std::move(targets)) {}
  Batch(NamedTensors named, torch::Tensor targets)
      : targets(std::move(targets)), named(std::move(named)) {}

  torch::Tensor inputs;  // [batch, ...], e.g. float32 images or int64 tokens
  torch::Tensor
      targets;         // [batch] or [batch, ...]: int64 class indices, or any dtype the loss takes
  NamedTensors named;  // several named inputs, for models that take more than one

  Inputs modelInputs() const { return named.empty() ? Inputs(inputs) : Inputs(named); }
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
