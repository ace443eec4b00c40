#include <gtest/gtest.h>

#include "trainer/allreduce/grad_sync.h"
#include "trainer/optim/optimizer.h"

namespace ringtrain {
namespace {

TEST(Schedule, WarmupThenCosineToMinLr) {
  ScheduleConfig s;
  s.name = "cosine";
  s.warmup_steps = 10;
  s.min_lr = 0.01;
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 1.0, 0, 110), 0.1);
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 1.0, 9, 110), 1.0);
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 1.0, 10, 110), 1.0);
  EXPECT_NEAR(scheduledLearningRate(s, 1.0, 60, 110), 0.505, 1e-12);
  EXPECT_NEAR(scheduledLearningRate(s, 1.0, 110, 110), 0.01, 1e-12);
}

TEST(Schedule, StepDecay) {
  ScheduleConfig s;
  s.name = "step";
  s.step_size = 100;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 0.8, 99, 1000), 0.8);
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 0.8, 100, 1000), 0.4);
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 0.8, 250, 1000), 0.2);
}

TEST(Schedule, ConstantIgnoresStep) {
  ScheduleConfig s;
  EXPECT_DOUBLE_EQ(scheduledLearningRate(s, 0.3, 12345, 10), 0.3);
}

TEST(Optimizer, SetLearningRateReachesEveryGroup) {
  auto w = torch::ones({2}, torch::requires_grad());
  for (const std::string name : {"sgd", "adamw"}) {
    OptimizerConfig cfg;
    cfg.name = name;
    auto opt = makeOptimizer(cfg, {w});
    setLearningRate(*opt, 0.125);
    w.mutable_grad() = torch::ones({2});
    const auto before = w.detach().clone();
    opt->step();
    EXPECT_GT((before - w.detach()).abs().max().item<double>(), 0.0) << name;
    if (name == "sgd") {
      EXPECT_NEAR(w[0].item<double>(), before[0].item<double>() - 0.125, 1e-7);
    }
    torch::NoGradGuard g;
    w.copy_(torch::ones({2}));
  }
}

TEST(Optimizer, ZeroGradsInPlaceKeepsTheGradientTensor) {
  // The Trainer's .grad tensors are slices of its gradient buckets: zeroing must keep them
  // (LibTorch 2.x's zero_grad() would set them to none).
  auto w = torch::ones({3}, torch::requires_grad());
  OptimizerConfig cfg;
  auto opt = makeOptimizer(cfg, {w});
  auto bucket = torch::full({5}, 7.0f);
  // An alias of the bucket's memory, as GradientSynchronizer makes them (not a view, which
  // zero_grad could not detach in place).
  w.mutable_grad() = torch::empty({0}).set_(bucket.storage(), 1, {3});
  zeroGradsInPlace(*opt);
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().data_ptr(), bucket.narrow(0, 1, 3).data_ptr());
  EXPECT_TRUE(torch::equal(bucket, torch::tensor({7.0f, 0.0f, 0.0f, 0.0f, 7.0f})));
}

TEST(Buckets, ReverseOrderFirstBucketSmallEveryParameterOnce) {
  std::vector<torch::Tensor> params;
  for (int i = 0; i < 10; ++i) params.push_back(torch::zeros({100000}));  // 0.38 MiB each
  const auto buckets = planBuckets(params, /*bucketMb=*/1.0, /*firstBucketMb=*/0.5);
  ASSERT_GE(buckets.size(), 4u);
  EXPECT_EQ(buckets.front().parameterIndices.front(), 9u);  // last registered first
  EXPECT_EQ(buckets.front().parameterIndices.size(), 1u);   // 0.5 MiB holds one
  std::vector<int> seen(10, 0);
  for (const auto& b : buckets) {
    int64_t offset = 0;
    for (size_t i = 0; i < b.parameterIndices.size(); ++i) {
      EXPECT_EQ(b.offsets[i], offset);
      offset += params[b.parameterIndices[i]].numel();
      ++seen[b.parameterIndices[i]];
    }
    EXPECT_EQ(b.numel, offset);
    EXPECT_LE(b.numel * 4, 1024 * 1024 + 400000);
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(Buckets, DtypesAreNeverMixed) {
  std::vector<torch::Tensor> params = {torch::zeros({4}), torch::zeros({4}, torch::kFloat64),
                                       torch::zeros({4})};
  const auto buckets = planBuckets(params, 25.0);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[1].dtype, torch::kFloat64);
}

}  // namespace
}  // namespace ringtrain
