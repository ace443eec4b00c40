// The sum kernels behind the ring all-reduce and the bf16/fp16 MPI_Op: each must match
// torch's own addition in that dtype bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <stdexcept>

#include "collectives/reduce_kernels.h"

namespace ringtrain {
namespace {

struct Case {
  torch::Dtype torchType;
  RingDtype ringType;
};

class ReduceKernelTest : public testing::TestWithParam<Case> {};

TEST_P(ReduceKernelTest, MatchesTorchAddition) {
  const Case c = GetParam();
  torch::manual_seed(7);
  // 1037 elements: not a multiple of any vector width, so the loop tail runs too.
  torch::Tensor a, b;
  if (c.torchType == torch::kInt || c.torchType == torch::kLong) {
    a = torch::randint(-1000000, 1000000, {1037}, c.torchType);
    b = torch::randint(-1000000, 1000000, {1037}, c.torchType);
  } else {
    a = (torch::randn({1037}) * 100).to(c.torchType);
    b = (torch::randn({1037}) * 100).to(c.torchType);
  }
  const torch::Tensor want = a + b;
  reduceSum(a.data_ptr(), b.data_ptr(), a.numel(), c.ringType);
  EXPECT_TRUE(torch::equal(a, want)) << dtypeName(c.ringType);
  EXPECT_EQ(dtypeSize(c.ringType), static_cast<std::size_t>(a.element_size()));
}

TEST_P(ReduceKernelTest, ZeroCountTouchesNothing) {
  const Case c = GetParam();
  auto a = torch::ones({3}, c.torchType);
  auto b = torch::ones({3}, c.torchType);
  reduceSum(a.data_ptr(), b.data_ptr(), 0, c.ringType);
  EXPECT_TRUE(torch::equal(a, torch::ones({3}, c.torchType)));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ReduceKernelTest,
                         testing::Values(Case{torch::kFloat, RingDtype::Float32},
                                         Case{torch::kDouble, RingDtype::Float64},
                                         Case{torch::kInt, RingDtype::Int32},
                                         Case{torch::kLong, RingDtype::Int64},
                                         Case{torch::kBFloat16, RingDtype::BFloat16},
                                         Case{torch::kHalf, RingDtype::Float16}),
                         [](const testing::TestParamInfo<Case>& info) {
                           return dtypeName(info.param.ringType);
                         });

TEST(ReduceKernels, SixteenBitFloatsRoundAndSaturateLikeTorch) {
  // Halfway cases round to even; fp16 overflows to inf; NaN stays NaN.
  for (auto type : {torch::kBFloat16, torch::kHalf}) {
    const RingDtype ring = type == torch::kHalf ? RingDtype::Float16 : RingDtype::BFloat16;
    auto a = torch::tensor({1.0f, 256.0f, 60000.0f, 1.0f, -3.5f}).to(type);
    auto b =
        torch::tensor({1.0f / 256, 1.0f, 60000.0f, std::numeric_limits<float>::quiet_NaN(), 3.5f})
            .to(type);
    const auto want = a + b;
    reduceSum(a.data_ptr(), b.data_ptr(), a.numel(), ring);
    EXPECT_TRUE(torch::equal(a.isnan(), want.isnan()));
    EXPECT_TRUE(torch::equal(a.nan_to_num(0), want.nan_to_num(0))) << c10::toString(type);
  }
}

// The average's kernels round like torch: x.mul_(1/3) (the factor rounded to the dtype first,
// 16-bit products computed in float32), and the scaled sum adds those rounded products.
TEST(ReduceKernels, ScalingMatchesTorchMulBitForBit) {
  const double third = 1.0 / 3.0;
  for (const auto& c :
       {Case{torch::kFloat, RingDtype::Float32}, Case{torch::kDouble, RingDtype::Float64},
        Case{torch::kBFloat16, RingDtype::BFloat16}, Case{torch::kHalf, RingDtype::Float16}}) {
    torch::manual_seed(9);
    auto a = (torch::randn({1037}) * 100).to(c.torchType);
    const auto b = (torch::randn({1037}) * 100).to(c.torchType);
    const auto scaledSum = a + b.clone().mul_(third);
    reduceScaledSum(a.data_ptr(), b.data_ptr(), a.numel(), c.ringType, third);
    EXPECT_TRUE(torch::equal(a, scaledSum)) << dtypeName(c.ringType);
    auto s = b.clone();
    scaleInPlace(s.data_ptr(), s.numel(), c.ringType, third);
    EXPECT_TRUE(torch::equal(s, b.clone().mul_(third))) << dtypeName(c.ringType);
    EXPECT_FALSE(torch::equal(s, b));
  }
  auto ints = torch::ones({3}, torch::kInt);
  EXPECT_THROW(scaleInPlace(ints.data_ptr(), 3, RingDtype::Int32, 0.5), std::invalid_argument);
  EXPECT_FALSE(isFloating(RingDtype::Int64));
  EXPECT_TRUE(isFloating(RingDtype::BFloat16));
}

TEST(ReduceKernels, IntegerOverflowWraps) {
  auto a = torch::tensor({std::numeric_limits<std::int32_t>::max()}, torch::kInt);
  auto b = torch::tensor({1}, torch::kInt);
  reduceSum(a.data_ptr(), b.data_ptr(), 1, RingDtype::Int32);
  EXPECT_EQ(a[0].item<std::int32_t>(), std::numeric_limits<std::int32_t>::min());
}

}  // namespace
}  // namespace ringtrain
