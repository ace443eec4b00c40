// Which samples each rank reads at each step.
//
// Sharding contract
// -----------------
// * Every epoch uses ONE global permutation P_e of [0, N), a function of (seed, epoch) only:
//   every rank computes the same P_e on its own, so no communication is needed, and the
//   sequence is the same on every platform and compiler because it uses ringtrain's own
//   generator rather than <random> (whose distributions and std::shuffle are
//   implementation-defined):
//     mix   = the SplitMix64 finaliser (splitmix64Mix below)
//     key   = mix(mix(seed) ^ epoch)
//     state = xoshiro256** (Blackman & Vigna) with s[i] = mix(key + (i+1) * 0x9E3779B97F4A7C15),
//             i = 0..3, i.e. the first four outputs of a SplitMix64 stream started at key
//     P_e   = Fisher-Yates on the identity: for i = N-1 .. 1, swap(P[i], P[uniform(i+1)]),
//             where uniform(n) rejects draws below 2^64 mod n and returns draw mod n
//             (unbiased).
//   shuffle = false gives the identity permutation in every epoch.
// * With B samples per rank and W ranks, the global batch is G = W * B. Step k of an epoch
//   consumes the k-th contiguous run of G positions of P_e; rank r takes positions
//   [k*G + r*B, k*G + (r+1)*B). Ranks are therefore disjoint, and the set a step covers
//   depends only on G, not on how it is split across ranks.
// * Elastic resume keeps G while the world size changes to W' (withGlobalBatch): step k
//   still consumes positions [k*G, (k+1)*G) of P_e, split into W' contiguous near-equal
//   parts as evalRange splits [0, G): the first G mod W' ranks take one sample more. The
//   trainer weights each rank's gradient by its share (b_r * W' / G), so the average over
//   ranks is the mean over the G samples, as it was at W ranks.
// * stepsPerEpoch = floor(N / G). The last N mod G positions of P_e are DROPPED for that
//   epoch, so every step has a full, equal batch on every rank (uneven batches would skew
//   the gradient average and need a different collective size). Because P_e changes each
//   epoch, a different set of samples is dropped each time; with shuffle = false the same
//   tail samples are dropped every epoch.
// * N < G (not even one step) is a ConfigError.
// * Evaluation drops nothing: evalRange() splits [0, N) into contiguous near-equal ranges.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ringtrain {

// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mix.
uint64_t splitmix64Mix(uint64_t x);

// The global permutation P_e of [0, n) described above.
std::vector<int64_t> epochPermutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

// Contiguous [begin, end) of [0, n) for `rank`: the first n mod worldSize ranks get one extra
// sample; together the ranges cover [0, n) exactly once. Throws ConfigError on bad ranks.
std::pair<int64_t, int64_t> evalRange(int64_t n, int rank, int worldSize);

class ShardSampler {
 public:
  // Throws ConfigError when an argument is out of range or datasetSize < worldSize *
  // perRankBatch.
  ShardSampler(int64_t datasetSize, int64_t perRankBatch, int rank, int worldSize, uint64_t seed,
               bool shuffle);
  // `globalBatch` samples per step split across `worldSize` ranks as described above (an
  // even split when worldSize divides it). Throws ConfigError when globalBatch < worldSize.
  static ShardSampler withGlobalBatch(int64_t datasetSize, int64_t globalBatch, int rank,
                                      int worldSize, uint64_t seed, bool shuffle);

  int64_t datasetSize() const { return datasetSize_; }
  // This rank's samples per step (they differ by one between ranks when the split is uneven).
  int64_t perRankBatch() const { return perRankBatch_; }
  int64_t globalBatch() const { return globalBatch_; }
  // This rank's share of a step's samples: perRankBatch * worldSize / globalBatch (1 when
  // the split is even), the weight of its gradient in the average.
  double gradientWeight() const {
    return static_cast<double>(perRankBatch_) * worldSize_ / static_cast<double>(globalBatch_);
  }
  int rank() const { return rank_; }
  int worldSize() const { return worldSize_; }
  uint64_t seed() const { return seed_; }
  bool shuffle() const { return shuffle_; }
  int64_t stepsPerEpoch() const { return datasetSize_ / globalBatch(); }
  // Samples left out of each epoch: datasetSize mod globalBatch.
  int64_t droppedPerEpoch() const { return datasetSize_ % globalBatch(); }

  // This rank's perRankBatch dataset indices for `step` of `epoch`. Thread-safe. Throws
  // DataError when epoch < 0 or step is outside [0, stepsPerEpoch()).
  std::vector<int64_t> indices(int64_t epoch, int64_t step) const;
  // P_e itself (cached, shared by every call for the same epoch). Thread-safe.
  std::shared_ptr<const std::vector<int64_t>> permutation(int64_t epoch) const;

 private:
  // Throws when the dataset is empty or smaller than one step.
  void checkFits() const;

  // The last epoch's permutation: a step-by-step caller asks for the same epoch
  // stepsPerEpoch times in a row. Shared between copies (the content depends only on
  // (seed, epoch, size, shuffle), which copies share too).
  struct Cache {
    std::mutex mutex;
    int64_t epoch = -1;
    std::shared_ptr<const std::vector<int64_t>> permutation;
  };

  ShardSampler(int64_t datasetSize, int64_t globalBatch, int64_t rankBegin, int64_t perRankBatch,
               int rank, int worldSize, uint64_t seed, bool shuffle);

  int64_t datasetSize_;
  int64_t globalBatch_;
  int64_t rankBegin_;  // this rank's first position within a step's globalBatch
  int64_t perRankBatch_;
  int rank_;
  int worldSize_;
  uint64_t seed_;
  bool shuffle_;
  std::shared_ptr<Cache> cache_;
};

}  // namespace ringtrain
