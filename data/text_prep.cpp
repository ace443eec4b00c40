#include "data/text_prep.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "core/error.h"
#include "data/token_shards.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string shardName(const std::string& prefix, int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%s_%03lld.bin", prefix.c_str(), static_cast<long long>(index));
  return name;
}

// Routes the training bytes into `shards` files, cutting at fixed byte offsets so the
// shards are near-equal.
class ShardedTrainWriter {
 public:
  ShardedTrainWriter(const std::string& dir, int64_t shards, int64_t totalBytes)
      : dir_(dir), shards_(shards), total_(totalBytes) {
    open(0);
  }

  void append(const unsigned char* bytes, size_t count) {
    while (count > 0) {
      // Shard k ends at byte (k + 1) * total / shards of the training stream.
      const int64_t end = (index_ + 1) * total_ / shards_;
      const auto room = static_cast<size_t>(std::max<int64_t>(0, end - written_));
      if (room == 0 && index_ + 1 < shards_) {
        finishCurrent();
        open(index_ + 1);
        continue;
      }
      const size_t n = index_ + 1 < shards_ ? std::min(room, count) : count;
      writer_->appendBytes(bytes, n);
      for (size_t i = 0; i < n; ++i) ++counts_[bytes[i]];
      written_ += static_cast<int64_t>(n);
      bytes += n;
      count -= n;
    }
  }

  void finish() {
    finishCurrent();
    while (index_ + 1 < shards_) {  // inputs shorter than expected: still write every shard
      open(index_ + 1);
      finishCurrent();
    }
  }

  const std::vector<std::string>& files() const { return files_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t written() const { return written_; }

 private:
  void open(int64_t index) {
    index_ = index;
    files_.push_back((fs::path(dir_) / shardName("train", index)).string());
    writer_ = std::make_unique<TokenShardWriter>(files_.back(), 2);
  }
  void finishCurrent() {
    if (writer_) writer_->finish();
    writer_.reset();
  }

  std::string dir_;
  int64_t shards_;
  int64_t total_;
  int64_t index_ = 0;
  int64_t written_ = 0;
  std::unique_ptr<TokenShardWriter> writer_;
  std::vector<std::string> files_;
  std::vector<int64_t> counts_ = std::vector<int64_t>(256, 0);
};

void removeStaleShards(const std::string& dir) {
  const std::regex pattern("(train|val)_[0-9]+\\.bin");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (std::regex_match(entry.path().filename().string(), pattern)) fs::remove(entry.path(), ec);
  }
}

}  // namespace

TextPrepResult prepareText(const TextPrepOptions& options) {
  if (options.inputs.empty()) {
    throw ConfigError("prepare-text: no input files", "pass one or more --in FILE");
  }
  if (options.shards < 1) {
    throw ConfigError("prepare-text: --shards must be >= 1, got " + std::to_string(options.shards));
  }
  if (!(options.valFraction >= 0.0 && options.valFraction < 1.0)) {
    throw ConfigError("prepare-text: --val-fraction must be in [0, 1), got " +
                          std::to_string(options.valFraction),
                      "e.g. --val-fraction 0.1 keeps the last 10% of every file for validation");
  }
  std::vector<int64_t> sizes;
  int64_t total = 0;
  int64_t trainTotal = 0;
  for (const auto& path : options.inputs) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      throw ConfigError("prepare-text: " + path + " is a directory",
                        "pass the files themselves, e.g. --in " + path + "/*");
    }
    const auto size = fs::file_size(path, ec);
    if (ec) throw DataError("cannot read " + path + ": " + ec.message(), "check the --in paths");
    sizes.push_back(static_cast<int64_t>(size));
    total += static_cast<int64_t>(size);
    trainTotal += static_cast<int64_t>(size) -
                  static_cast<int64_t>(static_cast<double>(size) * options.valFraction);
  }

  std::error_code ec;
  fs::create_directories(options.outDir, ec);
  if (ec) {
    throw DataError("cannot create " + options.outDir + ": " + ec.message(),
                    "choose a writable --out directory");
  }
  removeStaleShards(options.outDir);

  TextPrepResult result;
  ShardedTrainWriter train(options.outDir, options.shards, trainTotal);
  std::unique_ptr<TokenShardWriter> val;
  if (options.valFraction > 0.0) {
    result.valFiles.push_back((fs::path(options.outDir) / shardName("val", 0)).string());
    val = std::make_unique<TokenShardWriter>(result.valFiles.back(), 2);
  }
  std::vector<unsigned char> chunk(kChunkBytes);
  int64_t done = 0;
  for (size_t f = 0; f < options.inputs.size(); ++f) {
    const auto& path = options.inputs[f];
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError("cannot open " + path + ": " + std::strerror(errno));
    const int64_t size = sizes[f];
    const int64_t trainBytes =
        size - static_cast<int64_t>(static_cast<double>(size) * options.valFraction);
    int64_t offset = 0;
    while (offset < size) {
      const auto want = static_cast<std::streamsize>(std::min<int64_t>(kChunkBytes, size - offset));
      in.read(reinterpret_cast<char*>(chunk.data()), want);
      const auto got = static_cast<int64_t>(in.gcount());
      if (got <= 0) throw DataError("read error on " + path + " at byte " + std::to_string(offset));
      // Split the chunk at the file's train/val boundary.
      const int64_t toTrain = std::clamp<int64_t>(trainBytes - offset, 0, got);
      train.append(chunk.data(), static_cast<size_t>(toTrain));
      if (got > toTrain) {
        val->appendBytes(chunk.data() + toTrain, static_cast<size_t>(got - toTrain));
      }
      offset += got;
      done += got;
      if (options.progress) options.progress(done, total);
    }
  }
  train.finish();
  if (val) {
    val->finish();
    result.valTokens = val->count();
  }
  result.trainFiles = train.files();
  result.trainTokens = train.written();
  result.unigramEntropy = entropyOfCounts(train.counts());

  std::ofstream meta(fs::path(options.outDir) / "meta.yaml");
  meta << "# written by ringtrain prepare-text\n"
       << "format: ringtrain-tokens\n"
       << "version: " << kTokenShardVersion << "\n"
       << "tokenizer: bytes\n"
       << "vocab_size: 256\n"
       << "train_tokens: " << result.trainTokens << "\n"
       << "val_tokens: " << result.valTokens << "\n"
       << "train_shards: " << result.trainFiles.size() << "\n"
       << "unigram_entropy_nats: " << result.unigramEntropy << "\n";
  if (!meta) throw DataError("cannot write meta.yaml in " + options.outDir);
  return result;
}

}  // namespace ringtrain
