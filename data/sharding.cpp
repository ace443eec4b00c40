#include "data/sharding.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.h"

namespace ringtrain {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256** 1.0: small, fast, and fully specified, so every platform draws the same
// sequence.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t key) {
    for (int i = 0; i < 4; ++i) s_[i] = splitmix64Mix(key + kGolden * static_cast<uint64_t>(i + 1));
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n >= 1, without modulo bias: draws below 2^64 mod n are rejected so
  // that the accepted range is a whole multiple of n.
  uint64_t uniform(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }

 private:
  uint64_t s_[4];
};

}  // namespace

uint64_t splitmix64Mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<int64_t> epochPermutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  if (n < 0) throw DataError("epochPermutation: negative dataset size " + std::to_string(n));
  if (epoch < 0) throw DataError("epochPermutation: negative epoch " + std::to_string(epoch));
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  if (!shuffle) return perm;
  Xoshiro256 rng(splitmix64Mix(splitmix64Mix(seed) ^ static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<size_t>(rng.uniform(static_cast<uint64_t>(i) + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[j]);
  }
  return perm;
}

std::pair<int64_t, int64_t> evalRange(int64_t n, int rank, int worldSize) {
  if (worldSize < 1 || rank < 0 || rank >= worldSize) {
    throw ConfigError("evalRange: rank " + std::to_string(rank) + " is not in a world of " +
                      std::to_string(worldSize) + " ranks");
  }
  if (n < 0) throw DataError("evalRange: negative dataset size " + std::to_string(n), {}, rank);
  const int64_t base = n / worldSize;
  const int64_t extra = n % worldSize;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  const int64_t end = begin + base + (rank < extra ? 1 : 0);
  return {begin, end};
}

ShardSampler::ShardSampler(int64_t datasetSize, int64_t perRankBatch, int rank, int worldSize,
                           uint64_t seed, bool shuffle)
    : ShardSampler(datasetSize, perRankBatch * worldSize, perRankBatch * rank, perRankBatch, rank,
                   worldSize, seed, shuffle) {
  if (perRankBatch < 1) {
    throw ConfigError("data.batch_size must be >= 1, got " + std::to_string(perRankBatch),
                      "set data.batch_size to a positive number of samples per rank", rank);
  }
  checkFits();
}

ShardSampler ShardSampler::withGlobalBatch(int64_t datasetSize, int64_t globalBatch, int rank,
                                           int worldSize, uint64_t seed, bool shuffle) {
  if (worldSize < 1 || rank < 0 || rank >= worldSize) {
    throw ConfigError("ShardSampler: rank " + std::to_string(rank) + " is not in a world of " +
                      std::to_string(worldSize) + " ranks");
  }
  if (globalBatch < worldSize) {
    throw ConfigError("the global batch of " + std::to_string(globalBatch) +
                          " samples cannot be split across " + std::to_string(worldSize) +
                          " ranks: every rank needs at least one sample per step",
                      "run on at most " + std::to_string(globalBatch) +
                          " ranks, or resume from a checkpoint at an epoch's end with a larger "
                          "data.batch_size",
                      rank);
  }
  const auto [begin, end] = evalRange(globalBatch, rank, worldSize);
  ShardSampler sampler(datasetSize, globalBatch, begin, end - begin, rank, worldSize, seed,
                       shuffle);
  sampler.checkFits();
  return sampler;
}

ShardSampler::ShardSampler(int64_t datasetSize, int64_t globalBatch, int64_t rankBegin,
                           int64_t perRankBatch, int rank, int worldSize, uint64_t seed,
                           bool shuffle)
    : datasetSize_(datasetSize),
      globalBatch_(globalBatch),
      rankBegin_(rankBegin),
      perRankBatch_(perRankBatch),
      rank_(rank),
      worldSize_(worldSize),
      seed_(seed),
      shuffle_(shuffle),
      cache_(std::make_shared<Cache>()) {
  if (worldSize < 1 || rank < 0 || rank >= worldSize) {
    throw ConfigError("ShardSampler: rank " + std::to_string(rank) + " is not in a world of " +
                      std::to_string(worldSize) + " ranks");
  }
}

void ShardSampler::checkFits() const {
  const int rank = rank_;
  const int worldSize = worldSize_;
  const int64_t datasetSize = datasetSize_;
  if (datasetSize < 1) {
    throw DataError("the dataset is empty: nothing to train on", "check data.dir and data.name",
                    rank);
  }
  if (datasetSize < globalBatch()) {
    const bool even = perRankBatch_ * worldSize == globalBatch();
    throw ConfigError("the global batch (" + std::to_string(worldSize) +
                          (even ? " ranks x data.batch_size " + std::to_string(perRankBatch_)
                                : " ranks sharing") +
                          " = " + std::to_string(globalBatch()) +
                          " samples) is larger than the dataset (" + std::to_string(datasetSize) +
                          " samples): not one training step fits in an epoch",
                      datasetSize >= worldSize
                          ? "lower data.batch_size to at most " +
                                std::to_string(datasetSize / worldSize) + " or run on fewer ranks"
                          : "run on at most " + std::to_string(datasetSize) +
                                " ranks: the dataset has fewer samples than there are ranks",
                      rank);
  }
}

std::shared_ptr<const std::vector<int64_t>> ShardSampler::permutation(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->epoch != epoch || !cache_->permutation) {
    cache_->permutation = std::make_shared<const std::vector<int64_t>>(
        epochPermutation(datasetSize_, seed_, epoch, shuffle_));
    cache_->epoch = epoch;
  }
  return cache_->permutation;
}

std::vector<int64_t> ShardSampler::indices(int64_t epoch, int64_t step) const {
  if (epoch < 0 || step < 0 || step >= stepsPerEpoch()) {
    throw DataError("ShardSampler: (epoch " + std::to_string(epoch) + ", step " +
                        std::to_string(step) + ") is outside the epoch's steps [0, " +
                        std::to_string(stepsPerEpoch()) + ")",
                    {}, rank_);
  }
  const auto perm = permutation(epoch);
  const auto begin = perm->begin() + step * globalBatch() + rankBegin_;
  return std::vector<int64_t>(begin, begin + perRankBatch_);
}

}  // namespace ringtrain
