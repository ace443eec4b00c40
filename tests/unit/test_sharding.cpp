// Sharding contract (data/sharding.h): one global permutation per epoch, contiguous global
// batches split across ranks, the remainder dropped, identical on every platform.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "data/sharding.h"

namespace ringtrain {
namespace {

using Indices = std::vector<int64_t>;

TEST(ShardingGolden, SplitMix64MatchesReference) {
  // First outputs of the reference SplitMix64 generator seeded with 0 and 1234567.
  EXPECT_EQ(splitmix64Mix(0x9E3779B97F4A7C15ull), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(splitmix64Mix(1234567 + 0x9E3779B97F4A7C15ull), 0x599ED017FB08FC85ull);
}

TEST(ShardingGolden, PermutationIsAFixedSequence) {
  // Computed by an independent implementation of the contract; any change to the generator,
  // the seeding or the shuffle (or a platform difference) shows up here.
  EXPECT_EQ(epochPermutation(10, 42, 0, true), (Indices{5, 9, 4, 7, 1, 8, 0, 2, 3, 6}));
  EXPECT_EQ(epochPermutation(10, 42, 1, true), (Indices{7, 6, 8, 5, 3, 0, 2, 1, 9, 4}));
  EXPECT_EQ(epochPermutation(16, 7, 3, true),
            (Indices{2, 10, 7, 6, 0, 5, 8, 13, 1, 3, 14, 15, 9, 12, 11, 4}));
  const Indices big = epochPermutation(1000, 123456789, 5, true);
  EXPECT_EQ(Indices(big.begin(), big.begin() + 8),
            (Indices{416, 101, 375, 966, 543, 397, 324, 606}));
}

TEST(ShardingPermutation, IsAPermutation) {
  for (int64_t n : {0, 1, 2, 3, 17, 1000, 60000}) {
    Indices p = epochPermutation(n, 99, 4, true);
    std::sort(p.begin(), p.end());
    Indices identity(static_cast<size_t>(n));
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(p, identity) << "n=" << n;
  }
}

TEST(ShardingPermutation, NoShuffleIsIdentityEveryEpoch) {
  Indices identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  for (int64_t epoch : {0, 1, 7}) EXPECT_EQ(epochPermutation(50, 42, epoch, false), identity);
}

TEST(ShardingPermutation, DependsOnSeedAndEpochOnly) {
  EXPECT_EQ(epochPermutation(500, 1, 2, true), epochPermutation(500, 1, 2, true));
  EXPECT_NE(epochPermutation(500, 1, 2, true), epochPermutation(500, 1, 3, true));
  EXPECT_NE(epochPermutation(500, 1, 2, true), epochPermutation(500, 2, 2, true));
  // Seed and epoch are mixed, not added: (seed 1, epoch 2) differs from (seed 2, epoch 1).
  EXPECT_NE(epochPermutation(500, 1, 2, true), epochPermutation(500, 2, 1, true));
}

TEST(ShardingPermutation, FirstElementIsRoughlyUniform) {
  // 4000 seeds, n = 4: each value should be first ~1000 times. A biased bounded-integer
  // function or a broken Fisher-Yates fails this by a wide margin. Deterministic.
  std::vector<int> counts(4, 0);
  for (uint64_t seed = 0; seed < 4000; ++seed) ++counts[epochPermutation(4, seed, 0, true)[0]];
  for (int c : counts) {
    EXPECT_GT(c, 880);
    EXPECT_LT(c, 1120);
  }
}

// (world size, N, per-rank batch)
class ShardSamplerContract : public ::testing::TestWithParam<std::tuple<int, int64_t, int64_t>> {};

TEST_P(ShardSamplerContract, RanksPartitionTheEpochMinusTheRemainder) {
  const auto [worldSize, n, batch] = GetParam();
  const uint64_t seed = 2024;
  for (bool shuffle : {true, false}) {
    for (int64_t epoch : {0, 3}) {
      const Indices perm = epochPermutation(n, seed, epoch, shuffle);
      const int64_t g = worldSize * batch;
      std::vector<ShardSampler> samplers;
      for (int r = 0; r < worldSize; ++r)
        samplers.emplace_back(n, batch, r, worldSize, seed, shuffle);
      const int64_t steps = samplers[0].stepsPerEpoch();
      ASSERT_EQ(steps, n / g);
      EXPECT_EQ(samplers[0].droppedPerEpoch(), n % g);
      EXPECT_EQ(samplers[0].globalBatch(), g);

      std::multiset<int64_t> seen;
      for (int64_t step = 0; step < steps; ++step) {
        for (int r = 0; r < worldSize; ++r) {
          const Indices idx = samplers[static_cast<size_t>(r)].indices(epoch, step);
          ASSERT_EQ(static_cast<int64_t>(idx.size()), batch);
          // Rank r's slice of the k-th global batch, in permutation order.
          const auto begin = perm.begin() + step * g + r * batch;
          EXPECT_EQ(idx, Indices(begin, begin + batch)) << "rank " << r << " step " << step;
          seen.insert(idx.begin(), idx.end());
        }
      }
      // Disjoint across ranks and steps, and together exactly the kept prefix.
      const std::set<int64_t> unique(seen.begin(), seen.end());
      EXPECT_EQ(unique.size(), seen.size()) << "some sample was read twice";
      const std::set<int64_t> kept(perm.begin(), perm.begin() + steps * g);
      EXPECT_EQ(unique, kept);
      EXPECT_EQ(static_cast<int64_t>(seen.size()), n - n % g);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WorldSizesAndShapes, ShardSamplerContract,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4),
                                            ::testing::Values(int64_t{24}, int64_t{37},
                                                              int64_t{100}, int64_t{1001}),
                                            ::testing::Values(int64_t{1}, int64_t{3}, int64_t{6})));

TEST(ShardSampler, StepSetDependsOnGlobalBatchOnly) {
  // ws=1 x 8, ws=2 x 4 and ws=4 x 2 read the same 8 samples at every step.
  const int64_t n = 100;
  const uint64_t seed = 11;
  auto stepUnion = [&](int worldSize, int64_t batch, int64_t epoch, int64_t step) {
    Indices all;
    for (int r = 0; r < worldSize; ++r) {
      const Indices idx = ShardSampler(n, batch, r, worldSize, seed, true).indices(epoch, step);
      all.insert(all.end(), idx.begin(), idx.end());
    }
    return all;  // in rank order, which is permutation order
  };
  for (int64_t epoch : {0, 1}) {
    for (int64_t step = 0; step < n / 8; ++step) {
      const Indices one = stepUnion(1, 8, epoch, step);
      EXPECT_EQ(one, stepUnion(2, 4, epoch, step)) << "epoch " << epoch << " step " << step;
      EXPECT_EQ(one, stepUnion(4, 2, epoch, step)) << "epoch " << epoch << " step " << step;
    }
  }
}

// Elastic resume: a checkpoint of N ranks x b samples resumed on M ranks keeps G = N * b.
// For every M in 1..8, global batches M does not divide, and a dataset whose last partial
// batch is dropped, step k's ranks together read exactly positions [k*G, (k+1)*G) of P_e in
// rank order (the set the N-rank run reads), disjoint, with sizes differing by at most one,
// and weights that average to 1.
TEST(ShardSampler, ElasticResumeKeepsEveryStepsSamplesAtAnyWorldSize) {
  const uint64_t seed = 7;
  for (const int64_t n : {int64_t{97}, int64_t{240}}) {
    for (const int64_t g : {int64_t{8}, int64_t{12}, int64_t{13}, int64_t{24}}) {
      const auto perm = epochPermutation(n, seed, 3, true);
      for (int m = 1; m <= 8; ++m) {
        if (g < m) continue;
        std::set<int64_t> seen;
        for (int64_t step = 0; step < n / g; ++step) {
          Indices all;
          double weights = 0.0;
          int64_t smallest = g;
          int64_t largest = 0;
          for (int r = 0; r < m; ++r) {
            const auto sampler = ShardSampler::withGlobalBatch(n, g, r, m, seed, true);
            ASSERT_EQ(sampler.stepsPerEpoch(), n / g);
            ASSERT_EQ(sampler.globalBatch(), g);
            const Indices idx = sampler.indices(3, step);
            ASSERT_EQ(static_cast<int64_t>(idx.size()), sampler.perRankBatch());
            smallest = std::min(smallest, sampler.perRankBatch());
            largest = std::max(largest, sampler.perRankBatch());
            weights += sampler.gradientWeight();
            all.insert(all.end(), idx.begin(), idx.end());
          }
          const Indices expected(perm.begin() + step * g, perm.begin() + (step + 1) * g);
          ASSERT_EQ(all, expected) << "n " << n << " G " << g << " M " << m << " step " << step;
          EXPECT_LE(largest - smallest, 1);
          EXPECT_NEAR(weights / m, 1.0, 1e-12);
          for (const int64_t i : all) EXPECT_TRUE(seen.insert(i).second) << "sample " << i;
        }
        // The last partial batch (n mod G samples) is dropped, at every world size alike.
        EXPECT_EQ(static_cast<int64_t>(seen.size()), (n / g) * g);
        for (int64_t p = (n / g) * g; p < n; ++p) EXPECT_EQ(seen.count(perm[p]), 0u);
      }
    }
  }
}

TEST(ShardSampler, EvenGlobalBatchIsThePerRankSampler) {
  for (int m = 1; m <= 8; ++m) {
    for (int r = 0; r < m; ++r) {
      const auto elastic = ShardSampler::withGlobalBatch(1000, 6 * m, r, m, 5, true);
      const ShardSampler plain(1000, 6, r, m, 5, true);
      EXPECT_EQ(elastic.gradientWeight(), 1.0);  // exactly: the loss is not rescaled
      for (int64_t step : {0, 7, 1000 / (6 * m) - 1}) {
        EXPECT_EQ(elastic.indices(1, step), plain.indices(1, step));
      }
    }
  }
}

TEST(ShardSampler, GlobalBatchSmallerThanTheWorldIsRefused) {
  EXPECT_THROW(ShardSampler::withGlobalBatch(100, 3, 0, 4, 1, true), ConfigError);
  EXPECT_THROW(ShardSampler::withGlobalBatch(10, 16, 0, 4, 1, true), ConfigError);
  EXPECT_NO_THROW(ShardSampler::withGlobalBatch(100, 4, 3, 4, 1, true));
}

TEST(ShardSampler, SameSeedSameBatchesDifferentSeedOrEpochDifferent) {
  const ShardSampler a(1000, 10, 1, 3, 5, true);
  const ShardSampler b(1000, 10, 1, 3, 5, true);
  const ShardSampler otherSeed(1000, 10, 1, 3, 6, true);
  for (int64_t step : {0, 7, 32}) {
    EXPECT_EQ(a.indices(2, step), b.indices(2, step));
    EXPECT_NE(a.indices(2, step), otherSeed.indices(2, step));
    EXPECT_NE(a.indices(2, step), a.indices(3, step));
  }
}

TEST(ShardSampler, DroppedSamplesChangeAcrossEpochs) {
  const int64_t n = 100;
  const ShardSampler sampler(n, 8, 0, 3, 42, true);  // G = 24, 4 samples dropped per epoch
  ASSERT_EQ(sampler.droppedPerEpoch(), 4);
  auto dropped = [&](int64_t epoch) {
    const auto perm = sampler.permutation(epoch);
    return std::set<int64_t>(perm->begin() + sampler.stepsPerEpoch() * 24, perm->end());
  };
  EXPECT_EQ(dropped(0).size(), 4u);
  EXPECT_NE(dropped(0), dropped(1));
  // Without shuffling the same tail is dropped every epoch.
  const ShardSampler ordered(n, 8, 0, 3, 42, false);
  EXPECT_EQ(ordered.indices(5, 3), (Indices{72, 73, 74, 75, 76, 77, 78, 79}));
  EXPECT_EQ(ordered.stepsPerEpoch(), 4);
}

TEST(ShardSampler, GlobalBatchLargerThanDatasetIsAConfigError) {
  try {
    ShardSampler(30, 8, 1, 4, 42, true);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("4 ranks x data.batch_size 8 = 32 samples"), std::string::npos)
        << message;
    EXPECT_NE(message.find("dataset (30 samples)"), std::string::npos) << message;
    EXPECT_NE(std::string(e.hint()).find("at most 7"), std::string::npos) << e.hint();
    EXPECT_EQ(e.rank(), 1);
  }
  try {
    ShardSampler(3, 1, 0, 4, 42, true);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.hint()).find("at most 3 ranks"), std::string::npos) << e.hint();
  }
  EXPECT_NO_THROW(ShardSampler(32, 8, 1, 4, 42, true));  // exactly one step
}

TEST(ShardSampler, RejectsBadArguments) {
  EXPECT_THROW(ShardSampler(100, 0, 0, 1, 1, true), ConfigError);
  EXPECT_THROW(ShardSampler(100, 4, 2, 2, 1, true), ConfigError);
  EXPECT_THROW(ShardSampler(100, 4, -1, 2, 1, true), ConfigError);
  EXPECT_THROW(ShardSampler(100, 4, 0, 0, 1, true), ConfigError);
  EXPECT_THROW(ShardSampler(0, 4, 0, 1, 1, true), DataError);
  const ShardSampler s(100, 10, 0, 2, 1, true);
  EXPECT_THROW(s.indices(0, 5), DataError);
  EXPECT_THROW(s.indices(0, -1), DataError);
  EXPECT_THROW(s.indices(-1, 0), DataError);
  EXPECT_NO_THROW(s.indices(0, 4));
}

TEST(ShardSampler, ConcurrentCallersGetConsistentPermutations) {
  // The loader's producer thread and the trainer may query the same sampler (or copies of
  // it, which share the cache) for different epochs at once.
  const ShardSampler sampler(503, 5, 1, 4, 77, true);
  const ShardSampler copy = sampler;
  std::vector<Indices> expected;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    const Indices perm = epochPermutation(503, 77, epoch, true);
    expected.emplace_back(perm.begin() + 3 * 20 + 5, perm.begin() + 3 * 20 + 10);
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const ShardSampler& s = t % 2 == 0 ? sampler : copy;
      for (int i = 0; i < 200; ++i) {
        const int64_t epoch = (t + i) % 4;
        if (s.indices(epoch, 3) != expected[static_cast<size_t>(epoch)])
          ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(EvalRange, CoversEverySampleExactlyOnce) {
  for (int64_t n : {0, 1, 5, 10, 9999, 10000, 10001}) {
    for (int ws = 1; ws <= 5; ++ws) {
      int64_t next = 0;
      int64_t smallest = n, largest = 0;
      for (int r = 0; r < ws; ++r) {
        const auto [begin, end] = evalRange(n, r, ws);
        EXPECT_EQ(begin, next) << "n=" << n << " ws=" << ws << " rank " << r;
        EXPECT_LE(begin, end);
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
        next = end;
      }
      EXPECT_EQ(next, n) << "n=" << n << " ws=" << ws;
      EXPECT_LE(largest - smallest, 1) << "n=" << n << " ws=" << ws;
    }
  }
  EXPECT_EQ(evalRange(10, 0, 3), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(evalRange(10, 2, 3), (std::pair<int64_t, int64_t>{7, 10}));
  EXPECT_THROW(evalRange(10, 3, 3), ConfigError);
}

}  // namespace
}  // namespace ringtrain
