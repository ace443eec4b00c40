// AccumulatedGradHooks: callbacks after autograd has accumulated .grad, removable in any order.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "trainer/allreduce/grad_hooks.h"

namespace ringtrain {
namespace {

TEST(AccumulatedGradHooks, SeeTheAccumulatedGradAndMayBeRemovedInAnyOrder) {
  auto w = torch::ones({2}, torch::requires_grad());
  const std::vector<torch::Tensor> parameters{w};
  std::vector<float> firstSaw;
  int second = 0;
  std::optional<AccumulatedGradHooks> first;
  first.emplace(parameters, std::vector<size_t>{0},
                [&](size_t) { firstSaw.push_back(w.grad()[0].item<float>()); });
  std::optional<AccumulatedGradHooks> other;
  other.emplace(parameters, std::vector<size_t>{0}, [&](size_t) { ++second; });

  (w * 2).sum().backward();
  (w * 2).sum().backward();  // accumulates: the hook sees 2, then 4
  EXPECT_EQ(firstSaw, (std::vector<float>{2.0f, 4.0f}));
  EXPECT_EQ(second, 2);

  first.reset();  // the older set goes first: the newer one keeps running
  (w * 2).sum().backward();
  EXPECT_EQ(firstSaw.size(), 2u);
  EXPECT_EQ(second, 3);

  other.reset();
  (w * 2).sum().backward();
  EXPECT_EQ(second, 3);
  EXPECT_EQ(w.grad()[0].item<float>(), 8.0f);
}

}  // namespace
}  // namespace ringtrain
