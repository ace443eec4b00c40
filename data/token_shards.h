// Token streams for language models: flat binary files of token ids, memory-mapped.
//
// Shard file format (little-endian), written by TokenShardWriter / `ringtrain prepare-text`:
//
//   offset  size  field
//   0       8     magic "RTTOKENS"
//   8       4     version (1)
//   12      4     bytes per token: 2 (uint16 ids) or 4 (uint32, vocabularies over 65,535)
//   16      8     token count N
//   24      8     reserved, zero
//   32      N*w   the tokens
//
// The file size must be exactly 32 + N * w: a shard cut short by a crash is rejected rather
// than read as a shorter stream. nanoGPT's headerless train.bin / val.bin (uint16) are read
// with TokenFileFormat::NanoGpt.
//
// A TokenDataset over one or many shards defines its samples as windows of block_size + 1
// consecutive tokens that never cross a shard boundary: in a shard of n tokens, window j
// covers tokens [j * block_size, j * block_size + block_size + 1), for
// j < (n - 1) / block_size. The inputs are the first block_size tokens, the targets the last
// block_size (each input token's successor). Inputs of different windows never overlap, so
// the ShardSampler's disjoint sample indices give every rank disjoint token ranges, its
// (seed, epoch) permutation reshuffles them, and the Loader's cursor resumes mid-epoch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/dataset.h"
#include "data/split.h"

namespace ringtrain {

constexpr char kTokenShardMagic[8] = {'R', 'T', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kTokenShardVersion = 1;
constexpr size_t kTokenShardHeaderBytes = 32;

enum class TokenFileFormat {
  Ringtrain,  // header + tokens (the format above)
  NanoGpt,    // headerless uint16 tokens
};

// "ringtrain" or "nanogpt" (the values of data.token_format). Throws ConfigError otherwise.
TokenFileFormat parseTokenFileFormat(const std::string& name);

// A read-only memory mapping of a whole file. Owns the descriptor and the mapping.
class MappedFile {
 public:
  // Throws DataError naming the file when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();

  std::string path_;
  int fd_ = -1;
  const unsigned char* data_ = nullptr;  // null for an empty file (nothing to map)
  size_t size_ = 0;
};

// One token file, validated and mapped.
class TokenShard {
 public:
  // Throws DataError naming the file for a bad magic, version, token width, or a size that
  // does not match the header (or an odd size for a headerless nanoGPT file).
  TokenShard(const std::string& path, TokenFileFormat format);

  int64_t size() const { return count_; }  // tokens
  int bytesPerToken() const { return width_; }
  const std::string& path() const { return file_.path(); }
  // Token i, in [0, size()).
  int64_t at(int64_t i) const;
  // Copies tokens [begin, begin + count) to `out` (caller checks the range).
  void copy(int64_t begin, int64_t count, int64_t* out) const;

 private:
  MappedFile file_;
  const unsigned char* tokens_ = nullptr;
  int64_t count_ = 0;
  int width_ = 2;
};

// Streams tokens into a new shard file. The header's count is written by finish(); a
// writer destroyed without finish() leaves a file that TokenShard rejects.
class TokenShardWriter {
 public:
  // Throws DataError when the file cannot be created; ConfigError for a width not 2 or 4.
  TokenShardWriter(const std::string& path, int bytesPerToken);
  // Throws DataError for a token that does not fit the width, or a write error.
  void append(const uint32_t* tokens, size_t count);
  void appendBytes(const unsigned char* bytes, size_t count);  // byte-level tokens
  void finish();
  int64_t count() const { return count_; }

 private:
  void writeHeader();

  std::string path_;
  std::ofstream out_;
  int width_;
  int64_t count_ = 0;
  std::vector<char> buffer_;
};

class TokenDataset : public Dataset {
 public:
  // Throws DataError (no files, a bad file) or ConfigError (blockSize < 1).
  TokenDataset(const std::vector<std::string>& paths, int64_t blockSize, TokenFileFormat format);

  // The shard files of `split` in `dir`: <dir>/{train,val}_NNN.bin (sorted) for Ringtrain,
  // <dir>/{train,val}.bin for NanoGpt. Throws DataError (with a prepare-text hint) when none.
  static std::vector<std::string> shardPaths(const std::string& dir, Split split,
                                             TokenFileFormat format);

  int64_t size() const override { return windowOffsets_.back(); }
  // inputs and targets: int64 [B, block_size]. Throws DataError for an index out of range.
  Batch get(const std::vector<int64_t>& indices) const override;

  struct Window {
    int64_t shard = 0;
    int64_t begin = 0;  // first token of the window within the shard
  };
  // Window i covers tokens [begin, begin + blockSize() + 1) of shard `shard`.
  Window window(int64_t i) const;

  int64_t blockSize() const { return blockSize_; }
  int64_t tokenCount() const;
  const std::vector<TokenShard>& shards() const { return shards_; }
  // Entropy in nats of the token frequencies of all shards: the loss per token of the best
  // model that ignores context, i.e. the baseline a language model must beat. Computed on
  // the first call (one pass over the tokens), then cached. Thread-safe.
  double unigramEntropy() const;

 private:
  mutable std::once_flag entropyOnce_;
  mutable double entropy_ = 0.0;
  int64_t blockSize_;
  std::vector<TokenShard> shards_;
  std::vector<int64_t> windowOffsets_;  // windowOffsets_[s]: first window index of shard s
};

// Entropy in nats of a histogram of counts (zero counts ignored).
double entropyOfCounts(const std::vector<int64_t>& counts);

// The `tokens` dataset of the registry: cfg.dir, cfg.block_size, cfg.token_format; the test
// split reads the val shards.
DatasetPtr makeTokenDataset(const DataConfig& cfg, Split split);

}  // namespace ringtrain
