// IDX reader: valid plain and gzip files round-trip, and every kind of damage is a
// DataError that names the file and the problem.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/idx.h"

namespace ringtrain {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ringtrain_idx_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

Bytes idxBytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out;
  auto put32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<unsigned char>(v >> shift));
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes iota(size_t n) {
  Bytes data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<unsigned char>((i * 7) % 256);
  return data;
}

void writePlain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

void writeGzip(const std::string& path, const Bytes& bytes) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "wb"));
  ASSERT_TRUE(f != nullptr) << path;
  ASSERT_EQ(gzwrite(f.get(), bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
}

Bytes readRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs readIdxUint8 and returns the DataError's message and hint ("" when nothing threw).
std::pair<std::string, std::string> readError(const std::string& path, int dims) {
  try {
    readIdxUint8(path, dims);
  } catch (const DataError& e) {
    return {e.what(), e.hint()};
  }
  return {"", ""};
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(Idx, MagicNumbersFollowTheFormat) {
  EXPECT_EQ(idxUint8Magic(3), 0x00000803u);
  EXPECT_EQ(idxUint8Magic(1), 0x00000801u);
}

TEST(Idx, ReadsPlain3DImages) {
  TempDir dir;
  const auto path = dir.file("images-idx3-ubyte");
  const Bytes data = iota(3 * 2 * 4);
  writePlain(path, idxBytes(0x803, {3, 2, 4}, data));

  const torch::Tensor t = readIdxUint8(path, 3);
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  ASSERT_EQ(t.sizes().vec(), (std::vector<int64_t>{3, 2, 4}));
  const auto* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i < data.size(); ++i) EXPECT_EQ(p[i], data[i]) << "byte " << i;
  EXPECT_EQ(t[2][1][3].item<int>(), data[23]);
}

TEST(Idx, ReadsGzip1DLabels) {
  TempDir dir;
  const auto path = dir.file("labels-idx1-ubyte.gz");
  const Bytes data = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  writeGzip(path, idxBytes(0x801, {9}, data));
  ASSERT_NE(readRaw(path).at(0), 0) << "the test file should really be gzip";

  const torch::Tensor t = readIdxUint8(path, 1);
  ASSERT_EQ(t.sizes().vec(), (std::vector<int64_t>{9}));
  for (size_t i = 0; i < data.size(); ++i)
    EXPECT_EQ(t[static_cast<int64_t>(i)].item<int>(), data[i]);
}

TEST(Idx, LargeGzipRoundTrips) {
  // Several zlib buffers' worth, so the chunked read path is exercised.
  TempDir dir;
  const auto path = dir.file("big.gz");
  const Bytes data = iota(100 * 28 * 28);
  writeGzip(path, idxBytes(0x803, {100, 28, 28}, data));
  const torch::Tensor t = readIdxUint8(path, 3);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(data.size()));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), t.data_ptr<uint8_t>()));
}

TEST(Idx, WrongMagicNumber) {
  TempDir dir;
  const auto path = dir.file("labels-as-images");
  writePlain(path, idxBytes(0x801, {4}, iota(4)));
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "wrong magic number 0x00000801, expected 0x00000803");
  EXPECT_CONTAINS(message, "1 dimensions instead of 3");
  EXPECT_FALSE(hint.empty());
}

TEST(Idx, NotAnIdxFile) {
  TempDir dir;
  const auto path = dir.file("archive.zip");
  writePlain(path, {'P', 'K', 3, 4, 0, 0, 0, 0});
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "not an IDX file");
}

TEST(Idx, WrongElementType) {
  TempDir dir;
  const auto path = dir.file("floats");
  writePlain(path, idxBytes(0x0D01, {1}, {0, 0, 0, 0}));
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "element type 0x0D is not unsigned byte");
}

TEST(Idx, EmptyFile) {
  TempDir dir;
  const auto path = dir.file("empty");
  writePlain(path, {});
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "too short for the 4-byte magic number");
}

TEST(Idx, TruncatedHeader) {
  TempDir dir;
  const auto path = dir.file("short-header");
  Bytes bytes = idxBytes(0x803, {2, 2, 2}, {});
  bytes.resize(10);  // magic + 1.5 dimension sizes
  writePlain(path, bytes);
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "truncated: the header ends after 10 bytes");
}

TEST(Idx, ZeroDimension) {
  TempDir dir;
  const auto path = dir.file("zero");
  writePlain(path, idxBytes(0x803, {0, 28, 28}, {}));
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "dimension 0 is 0");
}

TEST(Idx, ImplausibleDimensionsFailBeforeAllocating) {
  TempDir dir;
  const auto path = dir.file("huge.gz");
  writeGzip(path, idxBytes(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 28}, iota(16)));
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "implausible dimensions");
}

TEST(Idx, AGzipFileCannotPromiseMoreThanDeflateHolds) {
  // 47 MB promised by a file of a few dozen bytes: refused before allocating the 47 MB.
  TempDir dir;
  const auto path = dir.file("bomb.gz");
  writeGzip(path, idxBytes(0x803, {60000, 28, 28}, iota(16)));
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "the header promises 47040000 data bytes, more than a gzip file of");
}

TEST(Idx, TruncatedPlainData) {
  TempDir dir;
  const auto path = dir.file("cut");
  Bytes bytes = idxBytes(0x803, {2, 3, 3}, iota(18));
  bytes.resize(bytes.size() - 5);
  writePlain(path, bytes);
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message,
                  "truncated: the header promises 18 data bytes but the file holds only 13");
}

TEST(Idx, TruncatedDataInsideValidGzip) {
  TempDir dir;
  const auto path = dir.file("cut.gz");
  writeGzip(path, idxBytes(0x801, {10}, iota(6)));
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message,
                  "truncated: the header promises 10 data bytes but the file holds only 6");
}

TEST(Idx, TruncatedGzipStream) {
  TempDir dir;
  const auto whole = dir.file("whole.gz");
  writeGzip(whole, idxBytes(0x803, {50, 28, 28}, iota(50 * 28 * 28)));
  Bytes gz = readRaw(whole);
  ASSERT_GT(gz.size(), 100u);
  gz.resize(gz.size() / 2);
  const auto path = dir.file("half.gz");
  writePlain(path, gz);
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "truncated gzip stream");
}

TEST(Idx, TrailingBytesPlain) {
  TempDir dir;
  const auto path = dir.file("long");
  Bytes bytes = idxBytes(0x801, {4}, iota(4));
  bytes.insert(bytes.end(), {1, 2, 3});
  writePlain(path, bytes);
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "trailing data: 3 bytes after the 4 data bytes");
}

TEST(Idx, TrailingBytesGzip) {
  TempDir dir;
  const auto path = dir.file("long.gz");
  Bytes bytes = idxBytes(0x803, {2, 2, 2}, iota(8 + 70000));
  writeGzip(path, bytes);
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "trailing data: 70000 bytes after the 8 data bytes");
}

TEST(Idx, CorruptGzipChecksum) {
  TempDir dir;
  const auto whole = dir.file("ok.gz");
  writeGzip(whole, idxBytes(0x801, {64}, iota(64)));
  Bytes gz = readRaw(whole);
  ASSERT_GT(gz.size(), 8u);
  gz[gz.size() - 8] ^= 0xFF;  // first byte of the CRC-32 in the gzip trailer
  const auto path = dir.file("badcrc.gz");
  writePlain(path, gz);
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "corrupt gzip stream");
}

TEST(Idx, CorruptGzipBody) {
  TempDir dir;
  const auto whole = dir.file("ok.gz");
  writeGzip(whole, idxBytes(0x803, {4, 4, 4}, iota(64)));
  Bytes gz = readRaw(whole);
  // Right after the 10-byte gzip header: 0xFF makes the first deflate block's type the
  // reserved value 3, which inflate must reject.
  for (size_t i = 10; i < gz.size() - 8; ++i) gz[i] = 0xFF;
  const auto path = dir.file("badbody.gz");
  writePlain(path, gz);
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "corrupt gzip stream");
}

TEST(Idx, MissingFile) {
  TempDir dir;
  const auto path = dir.file("no-such-file.gz");
  const auto [message, hint] = readError(path, 3);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "file not found");
  EXPECT_CONTAINS(hint, "dataset-fashion-mnist");
  EXPECT_CONTAINS(hint, "data.dir");
}

TEST(Idx, DirectoryInsteadOfFile) {
  TempDir dir;
  const auto path = dir.file("subdir");
  fs::create_directory(path);
  const auto [message, hint] = readError(path, 1);
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "is a directory");
}

}  // namespace
}  // namespace ringtrain
