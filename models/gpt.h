// `gpt`: a decoder-only transformer language model in the layout of nanoGPT / GPT-2.
//
//   transformer.wte        Embedding(vocab_size, n_embd)      token embedding
//   transformer.wpe        Embedding(block_size, n_embd)      position embedding
//   transformer.h.<i>      n_layer pre-LayerNorm blocks:
//     ln_1, attn.c_attn (n_embd -> 3 n_embd), attn.c_proj, ln_2, mlp.c_fc (-> 4 n_embd),
//     mlp.c_proj (-> n_embd); causal multi-head self-attention and a GELU MLP
//   transformer.ln_f       final LayerNorm
//   lm_head                tied to transformer.wte.weight
//
// The parameter names are those of nanoGPT's `GPT` module, so an exported state_dict loads
// into it (add "lm_head.weight" = "transformer.wte.weight": the tied weight is stored once
// here, because a parameter listed twice would be all-reduced twice per step).
//
// forward() takes int64 tokens [B, T] (T <= block_size) and returns logits [B, T, vocab].
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace ringtrain {

// The model.options of a `gpt` model; the defaults make a small byte-level model.
struct GptConfig {
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_embd = 128;
  int64_t block_size = 64;   // longest context, in tokens
  int64_t vocab_size = 256;  // 256: bytes, as written by `ringtrain prepare-text`
  double dropout = 0.0;
  bool bias = true;  // biases in the Linear and LayerNorm layers, as GPT-2

  // Reads model.options (null or a map). Throws ConfigError naming an unknown key (with the
  // closest valid one) or an out-of-range value, e.g. n_embd not divisible by n_head.
  static GptConfig fromOptions(const YAML::Node& options);
};

// LayerNorm whose bias can be switched off (GPT-2 style with bias = false); eps 1e-5.
class GptLayerNorm : public torch::nn::Module {
 public:
  GptLayerNorm(int64_t dim, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor weight_, bias_;
};

class CausalSelfAttention : public torch::nn::Module {
 public:
  explicit CausalSelfAttention(const GptConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t nHead_;
  double dropout_;
  torch::nn::Linear cAttn_{nullptr}, cProj_{nullptr};
};

class GptMlp : public torch::nn::Module {
 public:
  explicit GptMlp(const GptConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double dropout_;
  torch::nn::Linear cFc_{nullptr}, cProj_{nullptr};
};

class GptBlock : public torch::nn::Module {
 public:
  explicit GptBlock(const GptConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::shared_ptr<GptLayerNorm> ln1_, ln2_;
  std::shared_ptr<CausalSelfAttention> attn_;
  std::shared_ptr<GptMlp> mlp_;
};

struct GptSampling {
  int64_t tokens = 200;      // how many tokens to generate
  double temperature = 1.0;  // > 0; lower is more conservative
  int64_t topK = 0;          // 0: sample from the whole vocabulary
  uint64_t seed = 0;         // same seed, same model, same prompt: same text
};

class Gpt : public Model {
 public:
  explicit Gpt(GptConfig cfg);
  // inputs.tensor(): integer tokens [B, T] with T <= block_size. Throws ModelError on a wrong shape
  // or dtype, or a token id outside [0, vocab_size).
  torch::Tensor forward(const Inputs& inputs) override;

  // Continues `prompt` (token ids; may be empty) autoregressively, feeding back at most the
  // last block_size tokens. Returns only the new tokens. Deterministic for a given seed
  // (uses its own generator, not torch's global one).
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt, const GptSampling& sampling);

  const GptConfig& config() const { return cfg_; }

 private:
  GptConfig cfg_;
  std::shared_ptr<torch::nn::Module> transformer_;  // groups wte, wpe, h, ln_f as nanoGPT does
  torch::nn::Embedding wte_{nullptr}, wpe_{nullptr};
  torch::nn::ModuleList h_{nullptr};
  std::shared_ptr<GptLayerNorm> lnF_;
};

// Factory for the model registry.
ModelPtr makeGpt(const YAML::Node& options);

}  // namespace ringtrain
