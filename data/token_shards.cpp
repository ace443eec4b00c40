#include "data/token_shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

uint64_t readLe(const unsigned char* p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

void writeLe(char* p, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

const char* kPrepareHint =
    "prepare token shards with `ringtrain prepare-text --in FILE... --out DIR` and point "
    "data.dir at DIR (or set data.token_format: nanogpt for train.bin/val.bin)";

}  // namespace

TokenFileFormat parseTokenFileFormat(const std::string& name) {
  if (name == "ringtrain") return TokenFileFormat::Ringtrain;
  if (name == "nanogpt") return TokenFileFormat::NanoGpt;
  throw ConfigError("unknown data.token_format '" + name + "'",
                    "use 'ringtrain' (shards from prepare-text) or 'nanogpt' (headerless uint16 "
                    "train.bin/val.bin)");
}

// ---------------------------------------------------------------------------------------
// MappedFile

MappedFile::MappedFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw DataError("cannot open " + path + ": " + std::strerror(errno),
                    "check that the file exists and is readable");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string reason = std::strerror(errno);
    release();
    throw DataError("cannot stat " + path + ": " + reason);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) return;
  void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (mapped == MAP_FAILED) {
    const std::string reason = std::strerror(errno);
    release();
    throw DataError("cannot map " + path + " into memory: " + reason);
  }
  data_ = static_cast<const unsigned char*>(mapped);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
}

// ---------------------------------------------------------------------------------------
// TokenShard

TokenShard::TokenShard(const std::string& path, TokenFileFormat format) : file_(path) {
  const size_t size = file_.size();
  if (format == TokenFileFormat::NanoGpt) {
    if (size % 2 != 0) {
      throw DataError(path + " has an odd size (" + std::to_string(size) +
                          " bytes): not a headerless uint16 token file",
                      "nanoGPT files hold uint16 tokens; for prepare-text shards set "
                      "data.token_format: ringtrain");
    }
    tokens_ = file_.data();
    count_ = static_cast<int64_t>(size / 2);
    width_ = 2;
    return;
  }
  const unsigned char* p = file_.data();
  if (size < kTokenShardHeaderBytes || std::memcmp(p, kTokenShardMagic, 8) != 0) {
    throw DataError(path + " is not a ringtrain token shard (no \"RTTOKENS\" header)",
                    "for nanoGPT's headerless train.bin/val.bin set data.token_format: nanogpt; "
                    "otherwise re-create the shards with `ringtrain prepare-text`");
  }
  const auto version = static_cast<uint32_t>(readLe(p + 8, 4));
  if (version != kTokenShardVersion) {
    throw DataError(path + " has token shard format version " + std::to_string(version) +
                        ", this build reads version " + std::to_string(kTokenShardVersion),
                    "re-create the shards with this version's `ringtrain prepare-text`");
  }
  width_ = static_cast<int>(readLe(p + 12, 4));
  if (width_ != 2 && width_ != 4) {
    throw DataError(path + " declares " + std::to_string(width_) +
                        " bytes per token; only 2 (uint16) and 4 (uint32) exist",
                    "the header is damaged: re-create the shard");
  }
  const uint64_t count = readLe(p + 16, 8);
  const uint64_t payload = size - kTokenShardHeaderBytes;
  if (count > payload / static_cast<uint64_t>(width_) ||
      count * static_cast<uint64_t>(width_) != payload) {
    throw DataError(path + " declares " + std::to_string(count) + " tokens of " +
                        std::to_string(width_) + " bytes but holds " + std::to_string(payload) +
                        " bytes after the header",
                    "the shard is truncated or was not finished: re-create it with "
                    "`ringtrain prepare-text`");
  }
  tokens_ = p + kTokenShardHeaderBytes;
  count_ = static_cast<int64_t>(count);
}

int64_t TokenShard::at(int64_t i) const {
  return static_cast<int64_t>(readLe(tokens_ + static_cast<size_t>(i) * width_, width_));
}

void TokenShard::copy(int64_t begin, int64_t count, int64_t* out) const {
  const unsigned char* p = tokens_ + static_cast<size_t>(begin) * width_;
  if (width_ == 2) {
    for (int64_t i = 0; i < count; ++i, p += 2) out[i] = p[0] | (p[1] << 8);
  } else {
    for (int64_t i = 0; i < count; ++i, p += 4) out[i] = static_cast<int64_t>(readLe(p, 4));
  }
}

// ---------------------------------------------------------------------------------------
// TokenShardWriter

TokenShardWriter::TokenShardWriter(const std::string& path, int bytesPerToken)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc), width_(bytesPerToken) {
  if (width_ != 2 && width_ != 4) {
    throw ConfigError("token width must be 2 or 4 bytes, got " + std::to_string(width_));
  }
  if (!out_) {
    throw DataError("cannot create " + path + ": " + std::strerror(errno),
                    "check that the output directory is writable");
  }
  writeHeader();
}

void TokenShardWriter::writeHeader() {
  char header[kTokenShardHeaderBytes] = {};
  std::memcpy(header, kTokenShardMagic, 8);
  writeLe(header + 8, kTokenShardVersion, 4);
  writeLe(header + 12, static_cast<uint64_t>(width_), 4);
  writeLe(header + 16, static_cast<uint64_t>(count_), 8);
  out_.seekp(0);
  out_.write(header, sizeof header);
}

void TokenShardWriter::append(const uint32_t* tokens, size_t count) {
  buffer_.resize(count * static_cast<size_t>(width_));
  for (size_t i = 0; i < count; ++i) {
    if (width_ == 2 && tokens[i] > 0xFFFF) {
      throw DataError(
          "token id " + std::to_string(tokens[i]) + " does not fit the uint16 shard " + path_,
          "write vocabularies over 65,535 tokens with 4 bytes per token");
    }
    writeLe(buffer_.data() + i * width_, tokens[i], width_);
  }
  out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  if (!out_) throw DataError("write error on " + path_, "check free disk space");
  count_ += static_cast<int64_t>(count);
}

void TokenShardWriter::appendBytes(const unsigned char* bytes, size_t count) {
  buffer_.resize(count * static_cast<size_t>(width_));
  for (size_t i = 0; i < count; ++i) writeLe(buffer_.data() + i * width_, bytes[i], width_);
  out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  if (!out_) throw DataError("write error on " + path_, "check free disk space");
  count_ += static_cast<int64_t>(count);
}

void TokenShardWriter::finish() {
  writeHeader();
  out_.flush();
  out_.close();
  if (!out_) throw DataError("cannot finish " + path_, "check free disk space");
}

// ---------------------------------------------------------------------------------------
// TokenDataset

TokenDataset::TokenDataset(const std::vector<std::string>& paths, int64_t blockSize,
                           TokenFileFormat format)
    : blockSize_(blockSize) {
  if (blockSize < 1) {
    throw ConfigError(
        "data.block_size must be >= 1 for token data, got " + std::to_string(blockSize),
        "set data.block_size to the model's context length "
        "(model.options.block_size)");
  }
  if (paths.empty()) throw DataError("no token files given", kPrepareHint);
  windowOffsets_.push_back(0);
  for (const auto& path : paths) {
    shards_.emplace_back(path, format);
    const int64_t n = shards_.back().size();
    const int64_t windows = n > 1 ? (n - 1) / blockSize_ : 0;
    windowOffsets_.push_back(windowOffsets_.back() + windows);
  }
}

std::vector<std::string> TokenDataset::shardPaths(const std::string& dir, Split split,
                                                  TokenFileFormat format) {
  const std::string prefix = split == Split::Train ? "train" : "val";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError("token data directory " + dir + " does not exist", kPrepareHint);
  }
  std::vector<std::string> paths;
  if (format == TokenFileFormat::NanoGpt) {
    const auto path = fs::path(dir) / (prefix + ".bin");
    if (fs::exists(path, ec)) paths.push_back(path.string());
  } else {
    const std::regex pattern(prefix + "_[0-9]+\\.bin");
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (std::regex_match(entry.path().filename().string(), pattern)) {
        paths.push_back(entry.path().string());
      }
    }
    std::sort(paths.begin(), paths.end());
  }
  if (paths.empty()) {
    throw DataError(
        "no " + prefix + " token files in " + dir + " (looked for " +
            (format == TokenFileFormat::NanoGpt ? prefix + ".bin" : prefix + "_NNN.bin") + ")",
        kPrepareHint);
  }
  return paths;
}

TokenDataset::Window TokenDataset::window(int64_t i) const {
  if (i < 0 || i >= size()) {
    throw DataError("token window " + std::to_string(i) + " is outside [0, " +
                    std::to_string(size()) + ")");
  }
  // The shard s with windowOffsets_[s] <= i < windowOffsets_[s + 1].
  const auto it = std::upper_bound(windowOffsets_.begin(), windowOffsets_.end(), i);
  const auto shard = static_cast<int64_t>(it - windowOffsets_.begin()) - 1;
  return {shard, (i - windowOffsets_[static_cast<size_t>(shard)]) * blockSize_};
}

Batch TokenDataset::get(const std::vector<int64_t>& indices) const {
  const auto n = static_cast<int64_t>(indices.size());
  auto inputs = torch::empty({n, blockSize_}, torch::kLong);
  auto targets = torch::empty({n, blockSize_}, torch::kLong);
  std::vector<int64_t> tokens(static_cast<size_t>(blockSize_ + 1));
  int64_t* in = inputs.data_ptr<int64_t>();
  int64_t* out = targets.data_ptr<int64_t>();
  for (int64_t row = 0; row < n; ++row) {
    const Window w = window(indices[static_cast<size_t>(row)]);
    shards_[static_cast<size_t>(w.shard)].copy(w.begin, blockSize_ + 1, tokens.data());
    std::copy(tokens.begin(), tokens.end() - 1, in + row * blockSize_);
    std::copy(tokens.begin() + 1, tokens.end(), out + row * blockSize_);
  }
  return {inputs, targets};
}

int64_t TokenDataset::tokenCount() const {
  int64_t total = 0;
  for (const auto& s : shards_) total += s.size();
  return total;
}

double entropyOfCounts(const std::vector<int64_t>& counts) {
  double total = 0.0;
  for (const int64_t c : counts) total += static_cast<double>(c);
  if (total <= 0.0) return 0.0;
  double h = 0.0;
  for (const int64_t c : counts) {
    if (c > 0) {
      const double p = static_cast<double>(c) / total;
      h -= p * std::log(p);
    }
  }
  return h;
}

double TokenDataset::unigramEntropy() const {
  std::call_once(entropyOnce_, [this] {
    std::vector<int64_t> dense(65536, 0);  // every uint16 id; wider ids go to the map
    std::unordered_map<int64_t, int64_t> sparse;
    for (const auto& shard : shards_) {
      for (int64_t i = 0; i < shard.size(); ++i) {
        const int64_t t = shard.at(i);
        if (t < 65536) {
          ++dense[static_cast<size_t>(t)];
        } else {
          ++sparse[t];
        }
      }
    }
    for (const auto& entry : sparse) dense.push_back(entry.second);
    entropy_ = entropyOfCounts(dense);
  });
  return entropy_;
}

DatasetPtr makeTokenDataset(const DataConfig& cfg, Split split) {
  const auto format = parseTokenFileFormat(cfg.token_format);
  if (cfg.block_size < 1) {
    throw ConfigError("data.block_size is not set; the 'tokens' dataset needs the window length",
                      "set data.block_size to model.options.block_size (e.g. 64)");
  }
  return std::make_shared<const TokenDataset>(TokenDataset::shardPaths(cfg.dir, split, format),
                                              cfg.block_size, format);
}

}  // namespace ringtrain
