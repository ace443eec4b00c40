// Text -> token shards for language models (`ringtrain prepare-text`).
//
// Byte-level tokenisation: every byte is one token (vocabulary 256), so any text in any
// encoding round-trips exactly and no tokenizer file is needed. From each input file the
// first (1 - valFraction) of its bytes go to the training split and the rest to validation,
// so both splits draw from every file. The training split is cut into `shards` files of
// near-equal size.
//
// Output in `outDir`:
//   train_000.bin ...   training shards (the format of data/token_shards.h, uint16)
//   val_000.bin         validation shard
//   meta.yaml           tokenizer, vocab_size, token counts, the unigram baseline
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ringtrain {

struct TextPrepOptions {
  std::vector<std::string> inputs;  // regular files
  std::string outDir;
  int64_t shards = 1;        // training shards, >= 1
  double valFraction = 0.1;  // in [0, 1)
  // Called with (bytes done, bytes total) after each chunk; may be empty.
  std::function<void(int64_t, int64_t)> progress;
};

struct TextPrepResult {
  int64_t trainTokens = 0;
  int64_t valTokens = 0;
  std::vector<std::string> trainFiles;
  std::vector<std::string> valFiles;
  // Entropy of the training bytes' distribution, in nats per byte: the validation loss of
  // a model that ignores context. A language model must get well below it.
  double unigramEntropy = 0.0;
};

// Throws ConfigError for bad options (no inputs, shards < 1, a fraction outside [0, 1), a
// directory given as input) and DataError for unreadable inputs or unwritable outputs.
// Removes stale {train,val}_NNN.bin files of an earlier run with more shards.
TextPrepResult prepareText(const TextPrepOptions& options);

}  // namespace ringtrain
