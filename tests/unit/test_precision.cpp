// train.precision: AutocastScope turns LibTorch's autocast on for its scope only.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/precision.h"

namespace ringtrain {
namespace {

torch::Tensor product() {
  const auto a = torch::ones({4, 4});
  return torch::matmul(a, a);
}

TEST(Precision, Bf16RunsMatrixProductsInBfloat16InsideTheScopeOnly) {
  EXPECT_EQ(product().scalar_type(), torch::kFloat32);
  {
    const AutocastScope autocast("bf16", torch::kCPU);
    const auto inside = product();
    EXPECT_EQ(inside.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(inside[0][0].item<float>(), 4.0f);
    // The loss's reductions stay in float32 when asked for.
    EXPECT_EQ(inside.to(torch::kFloat32).sum().scalar_type(), torch::kFloat32);
  }
  EXPECT_EQ(product().scalar_type(), torch::kFloat32);
}

TEST(Precision, Fp32LeavesAutocastOff) {
  const AutocastScope autocast("fp32", torch::kCPU);
  EXPECT_EQ(product().scalar_type(), torch::kFloat32);
}

TEST(Precision, NestedScopesRestoreTheOuterState) {
  {
    const AutocastScope outer("bf16", torch::kCPU);
    {
      const AutocastScope inner("bf16", torch::kCPU);
      EXPECT_EQ(product().scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(product().scalar_type(), torch::kBFloat16);  // still the outer scope's
  }
  EXPECT_EQ(product().scalar_type(), torch::kFloat32);
}

TEST(Precision, GradientsOfABf16ForwardAreFloat32) {
  auto weight = torch::randn({8, 4}, torch::requires_grad());
  torch::Tensor loss;
  {
    const AutocastScope autocast("bf16", torch::kCPU);
    const auto out = torch::matmul(torch::randn({2, 8}), weight);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    loss = out.to(torch::kFloat32).pow(2).mean();
  }
  loss.backward();
  ASSERT_TRUE(weight.grad().defined());
  EXPECT_EQ(weight.grad().scalar_type(), torch::kFloat32);  // master weights' dtype
}

}  // namespace
}  // namespace ringtrain
