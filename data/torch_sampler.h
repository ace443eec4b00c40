// ShardedSampler: the Trainer's sharding (data/sharding.h) as a torch::data sampler, for
// training loops that use LibTorch's own data loaders with DataParallel:
//
//   ringtrain::ShardedSampler sampler(dataset.size().value(), /*perRankBatch=*/64,
//                                     comm->rank(), comm->size(), /*seed=*/7);
//   auto loader = torch::data::make_data_loader(
//       dataset.map(torch::data::transforms::Stack<>()), sampler,
//       torch::data::DataLoaderOptions().batch_size(64));
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     for (auto& batch : *loader) { ... }           // each pass is the next epoch
//   }
//
// Every pass over the loader is one epoch of the shared permutation: ranks read disjoint
// samples, and every rank gets the same number of them (the epoch's tail that does not fill a
// global batch is dropped, a different tail each epoch), so no rank runs a step the others
// do not. With the loader's batch size equal to perRankBatch, step k of rank r reads exactly
// the samples the Trainer's step k gives rank r. Unlike PyTorch's DistributedSampler, the
// epoch advances by itself on each pass; setEpoch() sets the next one (when resuming).
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/sharding.h"

namespace ringtrain {

class ShardedSampler : public torch::data::samplers::Sampler<> {
 public:
  // Throws ConfigError as ShardSampler does (datasetSize < worldSize * perRankBatch, ranks).
  ShardedSampler(int64_t datasetSize, int64_t perRankBatch, int rank, int worldSize,
                 uint64_t seed = 0, bool shuffle = true);

  // The epoch the next pass over the loader reads.
  void setEpoch(int64_t epoch) { nextEpoch_ = epoch; }
  // The epoch being read (-1 before the first pass).
  int64_t epoch() const { return epoch_; }
  // Samples this rank reads per epoch: stepsPerEpoch * perRankBatch.
  int64_t samplesPerEpoch() const;

  // torch::data::samplers::Sampler. A new size (reset(n)) re-plans the shards over n samples.
  void reset(c10::optional<size_t> newSize = c10::nullopt) override;
  c10::optional<std::vector<size_t>> next(size_t batchSize) override;
  // The cursor (epoch, position read so far). After load(), the next pass over the loader
  // continues that epoch where the saved one stopped.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  ShardSampler shards_;
  int64_t epoch_ = -1;
  int64_t nextEpoch_ = 0;
  std::vector<size_t> indices_;  // this rank's samples of epoch_, in reading order
  size_t position_ = 0;
  size_t resumeAt_ = 0;  // where the next reset() starts (set by load)
};

}  // namespace ringtrain
