// Loader: yields exactly the sampler's batches in order, resumes from a cursor, is
// independent of the prefetch depth, bounds the work it does ahead, and hands producer
// errors to the consumer.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/loader.h"

namespace ringtrain {
namespace {

using Indices = std::vector<int64_t>;

// Sample i has input [i * 0.5, -i] and target i, so a batch shows which samples it holds.
// Counts get() calls; throws for `poison` when it is set.
class IndexDataset : public Dataset {
 public:
  explicit IndexDataset(int64_t n, int64_t poison = -1) : n_(n), poison_(poison) {}
  int64_t size() const override { return n_; }
  Batch get(const std::vector<int64_t>& indices) const override {
    ++calls_;
    for (int64_t i : indices) {
      if (i == poison_) throw DataError("sample " + std::to_string(i) + " is unreadable");
    }
    Batch b;
    b.targets = torch::tensor(indices, torch::kInt64);
    b.inputs =
        torch::stack({b.targets.to(torch::kFloat32) * 0.5, -b.targets.to(torch::kFloat32)}, 1);
    return b;
  }
  int64_t calls() const { return calls_.load(); }

 private:
  int64_t n_;
  int64_t poison_;
  mutable std::atomic<int64_t> calls_{0};
};

Indices targetsOf(const Batch& b) {
  const torch::Tensor t = b.targets.contiguous();
  return Indices(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// Drains the current epoch, returning the batches' targets.
std::vector<Indices> drain(Loader& loader) {
  std::vector<Indices> out;
  while (auto batch = loader.next()) out.push_back(targetsOf(*batch));
  return out;
}

std::vector<Indices> expectedBatches(const ShardSampler& s, int64_t epoch, int64_t fromStep = 0) {
  std::vector<Indices> out;
  for (int64_t step = fromStep; step < s.stepsPerEpoch(); ++step)
    out.push_back(s.indices(epoch, step));
  return out;
}

TEST(Loader, YieldsTheSamplersBatchesInOrder) {
  auto data = std::make_shared<IndexDataset>(103);
  const ShardSampler sampler(103, 4, 1, 3, 9, true);  // 8 steps, 7 dropped
  for (int64_t prefetch : {1, 2, 8, 100}) {
    Loader loader(data, sampler, prefetch, {2, 0});
    EXPECT_EQ(loader.stepsPerEpoch(), 8);
    std::vector<Indices> got;
    for (int64_t step = 0; step < 8; ++step) {
      EXPECT_EQ(loader.cursor(), (LoaderCursor{2, step}));
      auto batch = loader.next();
      ASSERT_TRUE(batch.has_value()) << "step " << step;
      EXPECT_EQ(batch->inputs.sizes().vec(), (std::vector<int64_t>{4, 2}));
      EXPECT_TRUE(torch::equal(batch->inputs.select(1, 1), -batch->targets.to(torch::kFloat32)));
      got.push_back(targetsOf(*batch));
    }
    EXPECT_EQ(got, expectedBatches(sampler, 2)) << "prefetch " << prefetch;
    EXPECT_FALSE(loader.next().has_value());
    EXPECT_FALSE(loader.next().has_value()) << "stays at the end until startEpoch";
    EXPECT_EQ(loader.cursor(), (LoaderCursor{2, 8}));
  }
}

TEST(Loader, PrefetchDepthDoesNotChangeTheBatches) {
  auto data = std::make_shared<IndexDataset>(200);
  const ShardSampler sampler(200, 7, 0, 2, 1234, true);
  Loader shallow(data, sampler, 1);
  Loader deep(data, sampler, 8);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    shallow.startEpoch(epoch);
    deep.startEpoch(epoch);
    for (;;) {
      auto a = shallow.next();
      auto b = deep.next();
      ASSERT_EQ(a.has_value(), b.has_value());
      if (!a) break;
      EXPECT_TRUE(torch::equal(a->inputs, b->inputs));
      EXPECT_TRUE(torch::equal(a->targets, b->targets));
    }
  }
}

TEST(Loader, ResumesFromACursor) {
  auto data = std::make_shared<IndexDataset>(120);
  const ShardSampler sampler(120, 5, 2, 4, 3, true);  // 6 steps
  Loader loader(data, sampler, 3, {1, 4});
  EXPECT_EQ(loader.cursor(), (LoaderCursor{1, 4}));
  EXPECT_EQ(drain(loader), expectedBatches(sampler, 1, 4));

  // A fresh loader that consumed steps 0-3 and one resumed at step 4 see the same rest.
  Loader uninterrupted(data, sampler, 3, {1, 0});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(uninterrupted.next().has_value());
  EXPECT_EQ(uninterrupted.cursor(), (LoaderCursor{1, 4}));
  EXPECT_EQ(drain(uninterrupted), expectedBatches(sampler, 1, 4));

  // A cursor at the end of an epoch yields nothing.
  Loader finished(data, sampler, 3, {1, 6});
  EXPECT_FALSE(finished.next().has_value());
}

TEST(Loader, StartEpochDropsPreparedBatches) {
  auto data = std::make_shared<IndexDataset>(64);
  const ShardSampler sampler(64, 4, 0, 1, 5, true);  // 16 steps
  Loader loader(data, sampler, 8);
  ASSERT_TRUE(loader.next().has_value());
  ASSERT_TRUE(loader.next().has_value());
  loader.startEpoch(3, 10);  // mid-epoch 0, with up to 8 batches of epoch 0 queued
  EXPECT_EQ(loader.cursor(), (LoaderCursor{3, 10}));
  EXPECT_EQ(drain(loader), expectedBatches(sampler, 3, 10));
  loader.startEpoch(4);
  EXPECT_EQ(drain(loader), expectedBatches(sampler, 4));
}

TEST(Loader, PreparesAtMostPrefetchBatchesAhead) {
  // The producer waits for room in the queue before gathering, so after k batches were
  // taken it can have started at most k + prefetch gathers, however fast it runs.
  for (int64_t prefetch : {1, 3}) {
    auto data = std::make_shared<IndexDataset>(50);
    const ShardSampler sampler(50, 2, 0, 1, 1, false);
    Loader loader(data, sampler, prefetch);
    for (int64_t taken = 1; taken <= 10; ++taken) {
      ASSERT_TRUE(loader.next().has_value());
      EXPECT_LE(data->calls(), taken + prefetch) << "prefetch " << prefetch;
    }
  }
}

TEST(Loader, ProducerErrorReachesTheConsumer) {
  // Without shuffling, sample 9 sits in step 4 (batches of 2); steps 0-3 are fine.
  auto data = std::make_shared<IndexDataset>(20, /*poison=*/9);
  const ShardSampler sampler(20, 2, 0, 1, 0, false);
  Loader loader(data, sampler, 2);
  for (int64_t step = 0; step < 4; ++step) {
    auto batch = loader.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(targetsOf(*batch), sampler.indices(0, step));
  }
  try {
    loader.next();
    FAIL() << "expected the producer's DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 9 is unreadable"), std::string::npos) << e.what();
  }
  EXPECT_THROW(loader.next(), DataError) << "the error is sticky";
  EXPECT_EQ(loader.cursor(), (LoaderCursor{0, 4}));
  // Moving past the bad step recovers.
  loader.startEpoch(0, 5);
  EXPECT_EQ(drain(loader), expectedBatches(sampler, 0, 5));
}

TEST(Loader, StopsCleanlyWhenTheConsumerStopsEarly) {
  auto data = std::make_shared<IndexDataset>(1000);
  const ShardSampler sampler(1000, 10, 0, 1, 1, true);
  {
    Loader untouched(data, sampler, 1);  // producer blocked on a full queue
  }
  {
    Loader partly(data, sampler, 4);
    ASSERT_TRUE(partly.next().has_value());
  }
  // Reaching here (no hang) is the point; the dataset saw only bounded work.
  EXPECT_LE(data->calls(), 1 + (1 + 4));
}

TEST(Loader, RejectsBadArguments) {
  auto data = std::make_shared<IndexDataset>(40);
  const ShardSampler sampler(40, 4, 0, 2, 1, true);  // 5 steps
  EXPECT_THROW(Loader(data, sampler, 0), ConfigError);
  EXPECT_THROW(Loader(data, sampler, 2, {0, 6}), ConfigError);
  EXPECT_THROW(Loader(data, sampler, 2, {-1, 0}), ConfigError);
  EXPECT_THROW(Loader(std::make_shared<IndexDataset>(41), sampler, 2), DataError);
  EXPECT_THROW(Loader(nullptr, sampler, 2), DataError);
  Loader ok(data, sampler, 2);
  EXPECT_THROW(ok.startEpoch(0, 7), ConfigError);
}

}  // namespace
}  // namespace ringtrain
