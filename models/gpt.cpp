#include "models/gpt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>

#include "core/error.h"
#include "core/names.h"

namespace ringtrain {

namespace nn = torch::nn;

namespace {

const std::vector<std::string>& gptOptionNames() {
  static const std::vector<std::string> names = {"n_layer",    "n_head",  "n_embd", "block_size",
                                                 "vocab_size", "dropout", "bias"};
  return names;
}

template <typename T>
T readOption(const YAML::Node& options, const std::string& key, T fallback) {
  const YAML::Node node = options[key];
  if (!node) return fallback;
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw ConfigError("model.options." + key + " of model 'gpt' is '" + YAML::Dump(node) +
                          "', not a valid " + (std::is_same_v<T, bool> ? "boolean" : "number"),
                      "see the option list in models/gpt.h or docs/language-models.md");
  }
}

void requirePositive(const std::string& key, int64_t value) {
  if (value < 1) {
    throw ConfigError(
        "model.options." + key + " of model 'gpt' must be >= 1, got " + std::to_string(value),
        "set model.options." + key + " to a positive integer");
  }
}

// nanoGPT's initialisation: N(0, 0.02) for weights, zeros for biases.
void initLinear(nn::Linear& layer, double std) {
  torch::NoGradGuard noGrad;
  layer->weight.normal_(0.0, std);
  if (layer->bias.defined()) layer->bias.zero_();
}

// A small generator of our own for sampling, so that `--seed` gives the same text on every
// platform and LibTorch version (torch's generator API differs between 1.x and 2.x).
class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  // Uniform in [0, 1) from the top 53 bits of a SplitMix64 draw.
  double uniform() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
  }

 private:
  uint64_t state_;
};

}  // namespace

GptConfig GptConfig::fromOptions(const YAML::Node& options) {
  GptConfig cfg;
  if (!options || options.IsNull()) return cfg;
  if (!options.IsMap()) {
    throw ConfigError("model.options of model 'gpt' must be a map",
                      "write e.g. options: {n_layer: 2, n_head: 4, n_embd: 128}");
  }
  for (const auto& entry : options) {
    const auto key = entry.first.as<std::string>();
    const auto& known = gptOptionNames();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw ConfigError(
          "unknown option model.options." + key + " for model 'gpt'" + didYouMean(key, known),
          "valid options: " + joinNames(known));
    }
  }
  cfg.n_layer = readOption(options, "n_layer", cfg.n_layer);
  cfg.n_head = readOption(options, "n_head", cfg.n_head);
  cfg.n_embd = readOption(options, "n_embd", cfg.n_embd);
  cfg.block_size = readOption(options, "block_size", cfg.block_size);
  cfg.vocab_size = readOption(options, "vocab_size", cfg.vocab_size);
  cfg.dropout = readOption(options, "dropout", cfg.dropout);
  cfg.bias = readOption(options, "bias", cfg.bias);
  requirePositive("n_layer", cfg.n_layer);
  requirePositive("n_head", cfg.n_head);
  requirePositive("n_embd", cfg.n_embd);
  requirePositive("block_size", cfg.block_size);
  requirePositive("vocab_size", cfg.vocab_size);
  if (cfg.n_embd % cfg.n_head != 0) {
    throw ConfigError("model.options.n_embd (" + std::to_string(cfg.n_embd) +
                          ") of model 'gpt' is not divisible by n_head (" +
                          std::to_string(cfg.n_head) + ")",
                      "every attention head gets n_embd / n_head channels: choose n_embd as a "
                      "multiple of n_head");
  }
  if (!(cfg.dropout >= 0.0 && cfg.dropout < 1.0)) {
    throw ConfigError("model.options.dropout of model 'gpt' must be in [0, 1), got " +
                          std::to_string(cfg.dropout),
                      "use 0.0 for small data sets, 0.1-0.2 to fight overfitting");
  }
  return cfg;
}

GptLayerNorm::GptLayerNorm(int64_t dim, bool bias) {
  weight_ = register_parameter("weight", torch::ones({dim}));
  if (bias) bias_ = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor GptLayerNorm::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight_.size(0)}, weight_, bias_, 1e-5);
}

CausalSelfAttention::CausalSelfAttention(const GptConfig& cfg)
    : nHead_(cfg.n_head), dropout_(cfg.dropout) {
  cAttn_ = register_module(
      "c_attn", nn::Linear(nn::LinearOptions(cfg.n_embd, 3 * cfg.n_embd).bias(cfg.bias)));
  cProj_ = register_module("c_proj",
                           nn::Linear(nn::LinearOptions(cfg.n_embd, cfg.n_embd).bias(cfg.bias)));
  initLinear(cAttn_, 0.02);
  // GPT-2: scale the residual projections by 1/sqrt(2 n_layer) so the residual stream's
  // variance does not grow with depth.
  initLinear(cProj_, 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer)));
}

torch::Tensor CausalSelfAttention::forward(const torch::Tensor& x) {
  const int64_t batch = x.size(0), time = x.size(1), channels = x.size(2);
  const int64_t headSize = channels / nHead_;
  auto qkv = cAttn_->forward(x).split(channels, 2);
  // [B, T, C] -> [B, heads, T, head size]
  auto heads = [&](const torch::Tensor& t) {
    return t.view({batch, time, nHead_, headSize}).transpose(1, 2);
  };
  auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);
  auto att = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(headSize));
  // Causal mask: position t attends to positions <= t only.
  auto future =
      torch::ones({time, time}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))
          .triu(1);
  att = att.masked_fill(future, -std::numeric_limits<float>::infinity());
  att = torch::dropout(torch::softmax(att, -1), dropout_, is_training());
  auto y = torch::matmul(att, v).transpose(1, 2).contiguous().view({batch, time, channels});
  return torch::dropout(cProj_->forward(y), dropout_, is_training());
}

GptMlp::GptMlp(const GptConfig& cfg) : dropout_(cfg.dropout) {
  cFc_ = register_module("c_fc",
                         nn::Linear(nn::LinearOptions(cfg.n_embd, 4 * cfg.n_embd).bias(cfg.bias)));
  cProj_ = register_module(
      "c_proj", nn::Linear(nn::LinearOptions(4 * cfg.n_embd, cfg.n_embd).bias(cfg.bias)));
  initLinear(cFc_, 0.02);
  initLinear(cProj_, 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer)));
}

torch::Tensor GptMlp::forward(const torch::Tensor& x) {
  return torch::dropout(cProj_->forward(torch::gelu(cFc_->forward(x))), dropout_, is_training());
}

GptBlock::GptBlock(const GptConfig& cfg) {
  ln1_ = register_module("ln_1", std::make_shared<GptLayerNorm>(cfg.n_embd, cfg.bias));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(cfg));
  ln2_ = register_module("ln_2", std::make_shared<GptLayerNorm>(cfg.n_embd, cfg.bias));
  mlp_ = register_module("mlp", std::make_shared<GptMlp>(cfg));
}

torch::Tensor GptBlock::forward(const torch::Tensor& x) {
  auto y = x + attn_->forward(ln1_->forward(x));
  return y + mlp_->forward(ln2_->forward(y));
}

Gpt::Gpt(GptConfig cfg) : cfg_(cfg) {
  transformer_ = register_module("transformer", std::make_shared<nn::Module>());
  wte_ = transformer_->register_module("wte", nn::Embedding(cfg_.vocab_size, cfg_.n_embd));
  wpe_ = transformer_->register_module("wpe", nn::Embedding(cfg_.block_size, cfg_.n_embd));
  h_ = transformer_->register_module("h", nn::ModuleList());
  for (int64_t i = 0; i < cfg_.n_layer; ++i) h_->push_back(std::make_shared<GptBlock>(cfg_));
  lnF_ =
      transformer_->register_module("ln_f", std::make_shared<GptLayerNorm>(cfg_.n_embd, cfg_.bias));
  torch::NoGradGuard noGrad;
  wte_->weight.normal_(0.0, 0.02);
  wpe_->weight.normal_(0.0, 0.02);
}

torch::Tensor Gpt::forward(const Inputs& inputs) {
  const torch::Tensor& tokens = inputs.tensor();
  if (tokens.dim() != 2 || torch::isFloatingType(tokens.scalar_type())) {
    throw ModelError("model 'gpt' expects integer token ids of shape [batch, time], got a " +
                         std::string(c10::toString(tokens.scalar_type())) + " tensor with " +
                         std::to_string(tokens.dim()) + " dimension(s)",
                     "use a token dataset (data.name: tokens) with model 'gpt'");
  }
  const int64_t time = tokens.size(1);
  if (time > cfg_.block_size) {
    throw ModelError("model 'gpt' got sequences of " + std::to_string(time) +
                         " tokens, longer than its block_size " + std::to_string(cfg_.block_size),
                     "set data.block_size <= model.options.block_size");
  }
  auto idx = tokens.to(torch::kLong);
  if (idx.numel() > 0 &&
      (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= cfg_.vocab_size)) {
    throw ModelError("model 'gpt' got a token id outside [0, vocab_size = " +
                         std::to_string(cfg_.vocab_size) + ")",
                     "set model.options.vocab_size to the tokenizer's vocabulary size (256 for "
                     "`ringtrain prepare-text`)");
  }
  auto positions =
      torch::arange(time, torch::TensorOptions().dtype(torch::kLong).device(idx.device()));
  auto x =
      torch::dropout(wte_->forward(idx) + wpe_->forward(positions), cfg_.dropout, is_training());
  for (const auto& block : *h_) x = block->as<GptBlock>()->forward(x);
  x = lnF_->forward(x);
  // lm_head: the transpose of the token embedding (weight tying, as GPT-2).
  return torch::nn::functional::linear(x, wte_->weight);
}

std::vector<int64_t> Gpt::generate(const std::vector<int64_t>& prompt,
                                   const GptSampling& sampling) {
  if (!(sampling.temperature > 0.0)) {
    throw ConfigError(
        "sampling temperature must be > 0, got " + std::to_string(sampling.temperature),
        "use e.g. --temperature 0.8");
  }
  torch::NoGradGuard noGrad;
  const bool wasTraining = is_training();
  eval();
  SampleRng rng(sampling.seed);
  std::vector<int64_t> context = prompt;
  std::vector<int64_t> generated;
  for (int64_t n = 0; n < sampling.tokens; ++n) {
    const auto window = std::min<int64_t>(static_cast<int64_t>(context.size()), cfg_.block_size);
    std::vector<int64_t> last(context.end() - window, context.end());
    if (last.empty()) last.push_back(0);  // nothing to condition on: start from token 0
    auto input = torch::tensor(last, torch::kLong).unsqueeze(0);
    auto logits =
        forward(input).select(1, -1).squeeze(0).to(torch::kFloat64) / sampling.temperature;
    if (sampling.topK > 0 && sampling.topK < logits.size(0)) {
      const double kth = std::get<0>(logits.topk(sampling.topK)).min().item<double>();
      logits = logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
    }
    auto probs = torch::softmax(logits, 0).contiguous();
    const double* p = probs.data_ptr<double>();
    // Inverse-CDF draw; the fallback covers rounding that leaves the sum just below 1.
    const double u = rng.uniform();
    int64_t token = probs.size(0) - 1;
    double cumulative = 0.0;
    for (int64_t i = 0; i < probs.size(0); ++i) {
      cumulative += p[i];
      if (u < cumulative) {
        token = i;
        break;
      }
    }
    context.push_back(token);
    generated.push_back(token);
  }
  train(wasTraining);
  return generated;
}

ModelPtr makeGpt(const YAML::Node& options) {
  return std::make_shared<Gpt>(GptConfig::fromOptions(options));
}

}  // namespace ringtrain
