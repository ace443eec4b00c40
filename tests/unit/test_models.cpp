#include <gtest/gtest.h>

#include "core/error.h"
#include "models/registry.h"

namespace ringtrain {
namespace {

std::vector<std::string> parameterNames(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  return names;
}

TEST(Models, FashionCnnMatchesTorchNnNamesAndShapes) {
  auto model = makeModel("fashion_cnn");
  EXPECT_EQ(parameterNames(*model),
            (std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                      "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  auto params = model->named_parameters();
  EXPECT_EQ(params["conv1.weight"].sizes(), torch::IntArrayRef({32, 1, 3, 3}));
  EXPECT_EQ(params["conv2.weight"].sizes(), torch::IntArrayRef({64, 32, 3, 3}));
  EXPECT_EQ(params["fc1.weight"].sizes(), torch::IntArrayRef({128, 3136}));
  EXPECT_EQ(params["fc2.weight"].sizes(), torch::IntArrayRef({10, 128}));
  EXPECT_EQ(parameterCount(*model), 320 + 18496 + 401536 + 1290);
  auto out = model->forward(torch::zeros({5, 1, 28, 28}));
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({5, 10}));
}

TEST(Models, FashionMlpMatchesTorchNnNamesAndShapes) {
  auto model = makeModel("fashion_mlp");
  EXPECT_EQ(parameterNames(*model),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                      "fc3.weight", "fc3.bias"}));
  EXPECT_EQ(parameterCount(*model), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  auto out = model->forward(torch::zeros({3, 1, 28, 28}));
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({3, 10}));
}

TEST(Models, UnknownNameListsRegisteredModels) {
  try {
    makeModel("fashion_cnnn");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fashion_cnnn"), std::string::npos);
    EXPECT_NE(e.hint().find("fashion_cnn"), std::string::npos);
  }
}

class TinyModel : public Model {
 public:
  TinyModel() { fc_ = register_module("fc", torch::nn::Linear(4, 2)); }
  torch::Tensor forward(const Inputs& x) override { return fc_->forward(x.tensor()); }

 private:
  torch::nn::Linear fc_{nullptr};
};

RINGTRAIN_REGISTER_MODEL("tiny_for_test",
                         [](const YAML::Node&) { return std::make_shared<TinyModel>(); });

TEST(Models, UserModelsRegisterByMacro) {
  auto model = makeModel("tiny_for_test");
  EXPECT_EQ(parameterCount(*model), 10);
  const auto names = registeredModels();
  EXPECT_NE(std::find(names.begin(), names.end(), "tiny_for_test"), names.end());
}

}  // namespace
}  // namespace ringtrain
