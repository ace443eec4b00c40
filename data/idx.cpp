#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <vector>

#include "core/error.h"

namespace ringtrain {

namespace {

// A corrupt header could claim terabytes; refuse before allocating. Far above any IDX
// dataset ringtrain is meant for (Fashion-MNIST train images are 47 MB).
constexpr int64_t kMaxDataBytes = int64_t{1} << 34;
// Deflate's largest expansion (a long run of one byte): a gzip file of N bytes holds at most
// about 1032 N bytes, so a header promising more is refused before its allocation.
constexpr int64_t kMaxDeflateRatio = 1032;
// gzread takes an unsigned int length; read in chunks well inside that.
constexpr size_t kReadChunk = size_t{1} << 30;

std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%0*X", digits, v);
  return buf;
}

[[noreturn]] void fail(const std::string& path, const std::string& problem,
                       const std::string& hint = {}) {
  throw DataError("IDX file '" + path + "': " + problem, hint);
}

// Owns a gzFile; also the one place that turns zlib's error state into a DataError.
class GzFile {
 public:
  explicit GzFile(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) fail(path_, "is a directory, not a file");
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      const int err = errno;
      if (err == ENOENT) {
        fail(path_, "file not found",
             "check the path; for Fashion-MNIST install the Debian package "
             "dataset-fashion-mnist or set data.dir to the directory holding the files");
      }
      fail(path_, std::string("cannot open: ") + (err != 0 ? std::strerror(err) : "out of memory"),
           "check the file's permissions");
    }
    // A larger buffer than zlib's 8 KiB default makes decompressing tens of MB faster.
    gzbuffer(file_, 1u << 17);
  }
  ~GzFile() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to `n` bytes into `dst`; returns the count, which is less than `n` only at the
  // end of the data. A corrupt or truncated gzip stream throws.
  size_t read(void* dst, size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min(n - total, kReadChunk));
      const int got = gzread(file_, out + total, want);
      checkStream();
      if (got <= 0) break;
      total += static_cast<size_t>(got);
      if (static_cast<unsigned>(got) < want) break;
    }
    return total;
  }

  // True when the file is not gzip-compressed (only meaningful after the first read).
  bool isPlain() const { return gzdirect(file_) != 0; }

 private:
  void checkStream() {
    int errnum = Z_OK;
    const char* message = gzerror(file_, &errnum);
    if (errnum == Z_OK) return;
    const std::string detail = message != nullptr ? message : "unknown zlib error";
    if (errnum == Z_BUF_ERROR) {
      fail(path_, "truncated gzip stream (" + detail + ")",
           "the download was probably cut short; fetch the file again");
    }
    if (errnum == Z_ERRNO) fail(path_, std::string("read failed: ") + std::strerror(errno));
    fail(path_, "corrupt gzip stream (" + detail + ")", "fetch the file again");
  }

  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t bigEndian32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

std::string sizeProblem(int64_t expectedData, int64_t actualData) {
  if (actualData < expectedData) {
    return "truncated: the header promises " + std::to_string(expectedData) +
           " data bytes but the file holds only " + std::to_string(actualData);
  }
  return "trailing data: " + std::to_string(actualData - expectedData) + " bytes after the " +
         std::to_string(expectedData) + " data bytes the header promises";
}

}  // namespace

torch::Tensor readIdxUint8(const std::string& path, int expectedDims) {
  if (expectedDims < 1 || expectedDims > 255) {
    throw DataError("readIdxUint8: expectedDims must be in [1, 255], got " +
                    std::to_string(expectedDims));
  }
  GzFile file(path);

  std::array<unsigned char, 4> magicBytes{};
  const size_t magicRead = file.read(magicBytes.data(), magicBytes.size());
  if (magicRead < magicBytes.size()) {
    fail(path, "truncated: only " + std::to_string(magicRead) +
                   " bytes, too short for the 4-byte magic number");
  }
  const uint32_t magic = bigEndian32(magicBytes.data());
  const uint32_t expectedMagic = idxUint8Magic(expectedDims);
  if (magic != expectedMagic) {
    std::string why;
    if (magicBytes[0] != 0 || magicBytes[1] != 0) {
      why = "not an IDX file";
    } else if (magicBytes[2] != 0x08) {
      why = "element type " + hex(magicBytes[2], 2) + " is not unsigned byte (0x08)";
    } else {
      why =
          std::to_string(magicBytes[3]) + " dimensions instead of " + std::to_string(expectedDims);
    }
    fail(path,
         "wrong magic number " + hex(magic, 8) + ", expected " + hex(expectedMagic, 8) + " (" +
             why + ")",
         "check that the file is the uint8 " + std::to_string(expectedDims) +
             "-D IDX file expected here (images are 3-D, labels 1-D)");
  }

  std::vector<unsigned char> dimBytes(4 * static_cast<size_t>(expectedDims));
  const size_t dimRead = file.read(dimBytes.data(), dimBytes.size());
  if (dimRead < dimBytes.size()) {
    fail(path, "truncated: the header ends after " + std::to_string(4 + dimRead) +
                   " bytes, inside the " + std::to_string(expectedDims) + " dimension sizes");
  }
  std::vector<int64_t> dims;
  int64_t dataBytes = 1;
  for (int d = 0; d < expectedDims; ++d) {
    const int64_t size = bigEndian32(dimBytes.data() + 4 * d);
    if (size == 0) fail(path, "dimension " + std::to_string(d) + " is 0: the file holds no data");
    if (dataBytes > kMaxDataBytes / size) {
      fail(path, "implausible dimensions: the data would exceed " + std::to_string(kMaxDataBytes) +
                     " bytes (corrupt header?)");
    }
    dataBytes *= size;
    dims.push_back(size);
  }

  const int64_t headerBytes = 4 + 4 * static_cast<int64_t>(expectedDims);
  // Check the size up front so a bad file fails before a large allocation.
  std::error_code ec;
  const auto fileBytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (!ec && file.isPlain() && fileBytes != headerBytes + dataBytes) {
    fail(path, sizeProblem(dataBytes, fileBytes - headerBytes));
  }
  if (!ec && !file.isPlain() && headerBytes + dataBytes > kMaxDeflateRatio * fileBytes + 1024) {
    fail(path,
         "the header promises " + std::to_string(dataBytes) +
             " data bytes, more than a gzip file of " + std::to_string(fileBytes) +
             " bytes can hold (deflate expands at most " + std::to_string(kMaxDeflateRatio) +
             "-fold): corrupt header?",
         "fetch the file again");
  }

  torch::Tensor data = torch::empty(dims, torch::kUInt8);
  const size_t got = file.read(data.data_ptr<uint8_t>(), static_cast<size_t>(dataBytes));
  if (static_cast<int64_t>(got) < dataBytes)
    fail(path, sizeProblem(dataBytes, static_cast<int64_t>(got)));

  // Reading past the data also makes zlib verify the gzip trailer (CRC and length).
  int64_t trailing = 0;
  std::array<unsigned char, 1 << 16> scratch{};
  for (size_t n; (n = file.read(scratch.data(), scratch.size())) > 0;) {
    trailing += static_cast<int64_t>(n);
  }
  if (trailing > 0) fail(path, sizeProblem(dataBytes, dataBytes + trailing));
  return data;
}

}  // namespace ringtrain
