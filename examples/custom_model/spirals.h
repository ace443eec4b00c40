// The example's own model and dataset: two interleaved spirals in the plane, and a small MLP
// that tells them apart. Nothing here is part of ringtrain; it only implements ringtrain's
// Model and Dataset interfaces.
#pragma once

#include <cstdint>

#include "data/dataset.h"
#include "models/model.h"

namespace example {

// `count` points, half on each spiral arm, with Gaussian noise; the same seed gives the
// same points on every rank (each rank builds the whole set and reads its own shard).
class Spirals : public ringtrain::Dataset {
 public:
  Spirals(int64_t count, uint64_t seed, double noise = 0.08);
  int64_t size() const override { return labels_.size(0); }
  ringtrain::Batch get(const std::vector<int64_t>& indices) const override;

 private:
  torch::Tensor points_;  // float32 [count, 2]
  torch::Tensor labels_;  // int64 [count]
};

class SpiralMlp : public ringtrain::Model {
 public:
  explicit SpiralMlp(int64_t hidden);
  torch::Tensor forward(const ringtrain::Inputs& inputs) override;

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};

}  // namespace example
