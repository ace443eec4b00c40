// The `gpt` model: nanoGPT parameter names and count, forward/backward shapes, causal
// masking (a later token never changes an earlier position's output), option validation,
// that it learns, and deterministic sampling.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/error.h"
#include "models/gpt.h"
#include "models/registry.h"

namespace ringtrain {
namespace {

GptConfig tinyConfig() {
  GptConfig cfg;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 16;
  cfg.block_size = 8;
  cfg.vocab_size = 11;
  return cfg;
}

TEST(Gpt, ParameterNamesFollowNanoGptAndTheTiedHeadIsStoredOnce) {
  Gpt model(tinyConfig());
  std::set<std::string> names;
  for (const auto& p : model.named_parameters()) names.insert(p.key());
  const std::set<std::string> expected = {"transformer.wte.weight",
                                          "transformer.wpe.weight",
                                          "transformer.h.0.ln_1.weight",
                                          "transformer.h.0.ln_1.bias",
                                          "transformer.h.0.attn.c_attn.weight",
                                          "transformer.h.0.attn.c_attn.bias",
                                          "transformer.h.0.attn.c_proj.weight",
                                          "transformer.h.0.attn.c_proj.bias",
                                          "transformer.h.0.ln_2.weight",
                                          "transformer.h.0.ln_2.bias",
                                          "transformer.h.0.mlp.c_fc.weight",
                                          "transformer.h.0.mlp.c_fc.bias",
                                          "transformer.h.0.mlp.c_proj.weight",
                                          "transformer.h.0.mlp.c_proj.bias",
                                          "transformer.h.1.ln_1.weight",
                                          "transformer.h.1.ln_1.bias",
                                          "transformer.h.1.attn.c_attn.weight",
                                          "transformer.h.1.attn.c_attn.bias",
                                          "transformer.h.1.attn.c_proj.weight",
                                          "transformer.h.1.attn.c_proj.bias",
                                          "transformer.h.1.ln_2.weight",
                                          "transformer.h.1.ln_2.bias",
                                          "transformer.h.1.mlp.c_fc.weight",
                                          "transformer.h.1.mlp.c_fc.bias",
                                          "transformer.h.1.mlp.c_proj.weight",
                                          "transformer.h.1.mlp.c_proj.bias",
                                          "transformer.ln_f.weight",
                                          "transformer.ln_f.bias"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(model.parameters().size(), expected.size());  // nothing listed twice
  EXPECT_TRUE(model.buffers().empty());                   // the causal mask is not state

  // GPT-2's count: V*C + T*C + L*(12 C^2 + 13 C) + 2 C.
  const int64_t C = 16, V = 11, T = 8, L = 2;
  EXPECT_EQ(parameterCount(model), V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C);
}

TEST(Gpt, WithoutBiasThereAreNoBiasParameters) {
  GptConfig cfg = tinyConfig();
  cfg.bias = false;
  Gpt model(cfg);
  for (const auto& p : model.named_parameters()) {
    EXPECT_EQ(p.key().find("bias"), std::string::npos) << p.key();
  }
}

TEST(Gpt, ForwardAndBackwardShapes) {
  torch::manual_seed(0);
  Gpt model(tinyConfig());
  auto tokens = torch::randint(0, 11, {3, 8}, torch::kLong);
  auto logits = model.forward(tokens);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 8, 11}));
  // Shorter sequences than block_size work too.
  EXPECT_EQ(model.forward(tokens.slice(1, 0, 5)).sizes(), (std::vector<int64_t>{3, 5, 11}));

  auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, 11}),
                                                   torch::randint(0, 11, {24}, torch::kLong));
  loss.backward();
  for (const auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_EQ(p.value().grad().sizes(), p.value().sizes()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(Gpt, AFutureTokenCannotChangeAnEarlierPosition) {
  torch::manual_seed(1);
  Gpt model(tinyConfig());
  model.eval();
  auto tokens = torch::randint(0, 11, {2, 8}, torch::kLong);
  const auto before = model.forward(tokens);
  for (int64_t t = 0; t < 8; ++t) {
    auto changed = tokens.clone();
    changed.index_put_({torch::indexing::Slice(), t}, (tokens.select(1, t) + 1) % 11);
    const auto after = model.forward(changed);
    // Positions < t are bit-identical; position t sees the new token.
    if (t > 0) {
      EXPECT_TRUE(torch::equal(before.slice(1, 0, t), after.slice(1, 0, t))) << "t=" << t;
    }
    EXPECT_GT((before.select(1, t) - after.select(1, t)).abs().max().item<double>(), 1e-6)
        << "t=" << t;
  }
}

TEST(Gpt, RejectsBadInputs) {
  Gpt model(tinyConfig());
  EXPECT_THROW(model.forward(torch::zeros({2, 9}, torch::kLong)), ModelError);  // > block_size
  EXPECT_THROW(model.forward(torch::zeros({2, 4}, torch::kFloat32)), ModelError);
  EXPECT_THROW(model.forward(torch::zeros({8}, torch::kLong)), ModelError);
  EXPECT_THROW(model.forward(torch::full({1, 4}, 11, torch::kLong)), ModelError);  // id >= vocab
}

TEST(Gpt, OptionsAreReadAndValidated) {
  const auto cfg = GptConfig::fromOptions(
      YAML::Load("{n_layer: 3, n_head: 2, n_embd: 32, block_size: 16, vocab_size: 300, "
                 "dropout: 0.1, bias: false}"));
  EXPECT_EQ(cfg.n_layer, 3);
  EXPECT_EQ(cfg.n_embd, 32);
  EXPECT_EQ(cfg.vocab_size, 300);
  EXPECT_DOUBLE_EQ(cfg.dropout, 0.1);
  EXPECT_FALSE(cfg.bias);
  EXPECT_EQ(GptConfig::fromOptions(YAML::Node()).n_layer, GptConfig().n_layer);

  try {
    GptConfig::fromOptions(YAML::Load("{n_layers: 2}"));
    FAIL() << "unknown option accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'n_layer'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GptConfig::fromOptions(YAML::Load("{n_embd: 30, n_head: 4}")), ConfigError);
  EXPECT_THROW(GptConfig::fromOptions(YAML::Load("{n_layer: 0}")), ConfigError);
  EXPECT_THROW(GptConfig::fromOptions(YAML::Load("{dropout: 1.0}")), ConfigError);
  EXPECT_THROW(GptConfig::fromOptions(YAML::Load("{n_head: many}")), ConfigError);
}

TEST(Gpt, IsRegisteredAsGpt) {
  auto model = makeModel("gpt", YAML::Load("{n_layer: 1, n_head: 1, n_embd: 8, block_size: 4}"));
  auto* gpt = dynamic_cast<Gpt*>(model.get());
  ASSERT_NE(gpt, nullptr);
  EXPECT_EQ(gpt->config().block_size, 4);
}

TEST(Gpt, LearnsARepeatingSequence) {
  torch::manual_seed(2);
  Gpt model(tinyConfig());
  torch::optim::Adam optimizer(model.parameters(), torch::optim::AdamOptions(1e-2));
  // 0 1 2 ... 10 0 1 2 ...: each token determines the next.
  auto sequence = torch::arange(0, 40, torch::kLong).remainder(11);
  auto inputs = sequence.slice(0, 0, 32).view({4, 8});
  auto targets = sequence.slice(0, 1, 33).view({4, 8});
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 60; ++step) {
    auto loss = torch::nn::functional::cross_entropy(model.forward(inputs).reshape({-1, 11}),
                                                     targets.reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_NEAR(first, std::log(11.0), 0.3);  // starts near uniform
  EXPECT_LT(last, 0.1 * first);
}

TEST(Gpt, SamplingIsDeterministicPerSeed) {
  torch::manual_seed(3);
  Gpt model(tinyConfig());
  GptSampling sampling;
  sampling.tokens = 20;  // longer than block_size: the context is cropped
  sampling.seed = 7;
  const auto a = model.generate({1, 2, 3}, sampling);
  const auto b = model.generate({1, 2, 3}, sampling);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  for (const auto t : a) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 11);
  }
  sampling.seed = 8;
  EXPECT_NE(model.generate({1, 2, 3}, sampling), a);
  sampling.topK = 1;  // greedy: independent of the seed
  const auto greedy = model.generate({1, 2, 3}, sampling);
  sampling.seed = 9;
  EXPECT_EQ(model.generate({1, 2, 3}, sampling), greedy);
  sampling.temperature = 0.0;
  EXPECT_THROW(model.generate({1}, sampling), ConfigError);
}

}  // namespace
}  // namespace ringtrain
