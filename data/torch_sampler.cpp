#include "data/torch_sampler.h"

#include <algorithm>

namespace ringtrain {

ShardedSampler::ShardedSampler(int64_t datasetSize, int64_t perRankBatch, int rank, int worldSize,
                               uint64_t seed, bool shuffle)
    : shards_(datasetSize, perRankBatch, rank, worldSize, seed, shuffle) {}

int64_t ShardedSampler::samplesPerEpoch() const {
  return shards_.stepsPerEpoch() * shards_.perRankBatch();
}

void ShardedSampler::reset(c10::optional<size_t> newSize) {
  if (newSize) {
    shards_ = ShardSampler(static_cast<int64_t>(*newSize), shards_.perRankBatch(), shards_.rank(),
                           shards_.worldSize(), shards_.seed(), shards_.shuffle());
  }
  epoch_ = nextEpoch_++;
  indices_.clear();
  indices_.reserve(static_cast<size_t>(samplesPerEpoch()));
  for (int64_t step = 0; step < shards_.stepsPerEpoch(); ++step) {
    for (const int64_t i : shards_.indices(epoch_, step))
      indices_.push_back(static_cast<size_t>(i));
  }
  position_ = std::min(indices_.size(), resumeAt_);
  resumeAt_ = 0;
}

c10::optional<std::vector<size_t>> ShardedSampler::next(size_t batchSize) {
  if (position_ >= indices_.size()) return c10::nullopt;
  const size_t end = std::min(indices_.size(), position_ + batchSize);
  std::vector<size_t> batch(indices_.begin() + static_cast<std::ptrdiff_t>(position_),
                            indices_.begin() + static_cast<std::ptrdiff_t>(end));
  position_ = end;
  return batch;
}

void ShardedSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("epoch", torch::tensor(epoch_, torch::kInt64), /*is_buffer=*/true);
  archive.write("position", torch::tensor(static_cast<int64_t>(position_), torch::kInt64),
                /*is_buffer=*/true);
}

void ShardedSampler::load(torch::serialize::InputArchive& archive) {
  auto epoch = torch::empty({}, torch::kInt64);
  auto position = torch::empty({}, torch::kInt64);
  archive.read("epoch", epoch, /*is_buffer=*/true);
  archive.read("position", position, /*is_buffer=*/true);
  // Applied by the next reset(), which the loader calls when the next pass begins.
  nextEpoch_ = std::max<int64_t>(0, epoch.item<int64_t>());
  resumeAt_ = epoch.item<int64_t>() < 0 ? 0 : static_cast<size_t>(position.item<int64_t>());
}

}  // namespace ringtrain
