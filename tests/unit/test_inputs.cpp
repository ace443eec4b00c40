// Inputs (core/inputs.h): one tensor or named tensors, and one clear error when a model
// reads them the other way or asks for a name the batch does not hold.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/inputs.h"
#include "data/dataset.h"

namespace ringtrain {
namespace {

TEST(Inputs, ATensorIsTheOneInput) {
  const auto x = torch::arange(6).reshape({2, 3});
  const Inputs inputs = x;
  EXPECT_FALSE(inputs.isNamed());
  EXPECT_TRUE(inputs.tensor().is_same(x));
  EXPECT_THROW(inputs.at("x"), ModelError);
}

TEST(Inputs, NamedTensorsAreReadByName) {
  const auto ids = torch::arange(4);
  const auto mask = torch::ones({4});
  const Inputs inputs(NamedTensors{{"ids", ids}, {"mask", mask}});
  EXPECT_TRUE(inputs.isNamed());
  EXPECT_TRUE(inputs.at("ids").is_same(ids));
  EXPECT_TRUE(inputs.at("mask").is_same(mask));
  EXPECT_EQ(inputs.names(), (std::vector<std::string>{"ids", "mask"}));
  try {
    inputs.tensor();
    FAIL() << "named inputs gave one tensor";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("ids, mask"), std::string::npos) << e.what();
  }
  try {
    inputs.at("msk");
    FAIL() << "a missing name gave a tensor";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'mask'"), std::string::npos) << e.what();
  }
}

TEST(Inputs, ToMovesEveryTensor) {
  const Inputs named(NamedTensors{{"a", torch::ones({2}, torch::kFloat64)}});
  const auto moved = named.to(torch::Device(torch::kCPU));
  EXPECT_TRUE(torch::equal(moved.at("a"), named.at("a")));
  EXPECT_FALSE(Inputs().to(torch::Device(torch::kCPU)).tensor().defined());
}

TEST(Inputs, ABatchGivesTheModelItsNamedInputsWhenItHasThem) {
  Batch single;
  single.inputs = torch::zeros({3, 2});
  EXPECT_FALSE(single.modelInputs().isNamed());
  EXPECT_TRUE(single.modelInputs().tensor().is_same(single.inputs));
  Batch named;
  named.named = {{"user", torch::zeros({3})}, {"item", torch::ones({3})}};
  EXPECT_TRUE(named.modelInputs().isNamed());
  EXPECT_TRUE(named.modelInputs().at("item").is_same(named.named.at("item")));
}

}  // namespace
}  // namespace ringtrain
