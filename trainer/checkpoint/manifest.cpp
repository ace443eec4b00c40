#include "trainer/checkpoint/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>
#include <vector>

#include "core/error.h"
#include "trainer/checkpoint/durable_file.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

const char* const kManifest = "MANIFEST";
const char* const kTrailer = "manifest-crc32";
// A manifest lists a handful of files; anything larger is not one of ours.
constexpr uint64_t kMaxManifestBytes = 64 * 1024;

uint32_t crcOf(const void* data, size_t size, uint32_t crc = 0) {
  // zlib's crc32 takes a uInt length: feed it in pieces that fit.
  uLong value = crc;
  const auto* bytes = static_cast<const Bytef*>(data);
  while (size > 0) {
    const size_t piece = std::min<size_t>(size, 1u << 30);
    value = crc32(value, bytes, static_cast<uInt>(piece));
    bytes += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(value);
}

// A file of a checkpoint, opened without following a symbolic link and without blocking on
// a FIFO planted in its place; closed on destruction.
class CheckpointFile {
 public:
  explicit CheckpointFile(const fs::path& path) : path_(path.string()) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd_ < 0) {
      const int error = errno;
      if (error == ENOENT) throw CheckpointError("checkpoint file " + path_ + " is missing");
      if (error == ELOOP) {
        throw CheckpointError(
            "checkpoint file " + path_ + " is a symbolic link, which a checkpoint never holds",
            "copy the file itself into the checkpoint directory");
      }
      throw CheckpointError("cannot read " + path_ + ": " + std::strerror(error));
    }
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd_);
      throw CheckpointError("checkpoint file " + path_ + " is not a regular file");
    }
    size_ = static_cast<uint64_t>(info.st_size);
  }
  ~CheckpointFile() { ::close(fd_); }
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Up to `capacity` bytes into `buffer`; 0 at the end of the file.
  size_t read(char* buffer, size_t capacity) {
    for (;;) {
      const ssize_t got = ::read(fd_, buffer, capacity);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR)
        throw CheckpointError("cannot read " + path_ + ": " + std::strerror(errno));
    }
  }

  // The whole file, whose size was checked by the caller before this allocates it.
  std::string readAll() {
    std::string bytes(size_, '\0');
    size_t done = 0;
    while (done < bytes.size()) {
      const size_t got = read(bytes.data() + done, bytes.size() - done);
      if (got == 0) break;
      done += got;
    }
    bytes.resize(done);  // shrunk while being read: the size check below reports it
    return bytes;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Size and CRC-32 of the whole file, streamed through `buffer`.
std::pair<uint64_t, uint32_t> digest(CheckpointFile& in, std::vector<char>& buffer) {
  uint64_t size = 0;
  uint32_t crc = 0;
  for (size_t got; (got = in.read(buffer.data(), buffer.size())) > 0; size += got) {
    crc = crcOf(buffer.data(), got, crc);
  }
  return {size, crc};
}

void checkDigest(const std::string& path, const ManifestEntry& entry, uint64_t size, uint32_t crc) {
  if (size != entry.size) {
    throw CheckpointError("checkpoint file " + path + " is corrupt (" + std::to_string(size) +
                          " bytes, the manifest says " + std::to_string(entry.size) +
                          ": truncated?)");
  }
  if (crc != entry.crc) {
    throw CheckpointError("checkpoint file " + path + " is corrupt (checksum mismatch)");
  }
}

const ManifestEntry& findEntry(const std::string& dir, const std::vector<ManifestEntry>& entries,
                               const std::string& file) {
  for (const auto& entry : entries) {
    if (entry.file == file) return entry;
  }
  throw CheckpointError("checkpoint " + dir + " lacks " + file + " in its MANIFEST");
}

}  // namespace

bool isPlainFileName(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

void writeManifest(const std::string& dir, const std::vector<std::string>& files) {
  std::ostringstream manifest;
  std::vector<char> buffer(1 << 20);
  for (const auto& file : files) {
    CheckpointFile in(fs::path(dir) / file);
    const auto [size, crc] = digest(in, buffer);
    manifest << file << ' ' << size << ' ' << crc << '\n';
  }
  // The CRC is taken before the trailer goes in (C++17 evaluates `<<` chains left to right,
  // so it cannot be computed inside the same expression).
  const std::string body = manifest.str();
  const std::string text =
      body + kTrailer + ' ' + std::to_string(crcOf(body.data(), body.size())) + '\n';
  FileWriter out((fs::path(dir) / kManifest).string());
  out.write(text.data(), text.size());
  out.finish();
}

std::vector<ManifestEntry> readManifest(const std::string& dir,
                                        const std::vector<std::string>& required) {
  std::string text;
  try {
    CheckpointFile in(fs::path(dir) / kManifest);
    if (in.size() > kMaxManifestBytes) {
      throw CheckpointError("checkpoint " + dir + " has a damaged MANIFEST (" +
                            std::to_string(in.size()) + " bytes; a manifest has a few hundred)");
    }
    text = in.readAll();
  } catch (const CheckpointError& e) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(fs::path(dir) / kManifest, ec))) {
      throw CheckpointError("checkpoint " + dir + " has no MANIFEST (incomplete write)");
    }
    throw;
  }
  // The trailer checks the manifest itself: a truncated or damaged one is not trusted.
  const auto trailerAt = text.rfind(std::string(kTrailer) + ' ');
  unsigned long trailerCrc = 0;
  if (trailerAt == std::string::npos ||
      std::sscanf(text.c_str() + trailerAt, "manifest-crc32 %lu", &trailerCrc) != 1 ||
      trailerCrc != crcOf(text.data(), trailerAt)) {
    throw CheckpointError("checkpoint " + dir + " has a damaged MANIFEST");
  }
  std::vector<ManifestEntry> entries;
  std::istringstream lines(text.substr(0, trailerAt));
  ManifestEntry entry;
  while (lines >> entry.file >> entry.size >> entry.crc) {
    // Its CRC matched, so a bad name was written on purpose: never open it.
    if (!isPlainFileName(entry.file)) {
      throw CheckpointError("checkpoint " + dir + "'s MANIFEST lists '" + entry.file +
                                "', which is not a file of the checkpoint directory",
                            "a checkpoint lists only its own files; do not load this one");
    }
    for (const auto& earlier : entries) {
      if (earlier.file == entry.file) {
        throw CheckpointError("checkpoint " + dir + "'s MANIFEST lists " + entry.file + " twice");
      }
    }
    entries.push_back(entry);
  }
  if (!lines.eof()) throw CheckpointError("checkpoint " + dir + " has a damaged MANIFEST");
  for (const auto& name : required) findEntry(dir, entries, name);
  return entries;
}

void verifyManifestFiles(const std::string& dir, const std::vector<ManifestEntry>& entries) {
  std::vector<char> buffer(1 << 20);
  for (const auto& entry : entries) {
    CheckpointFile in(fs::path(dir) / entry.file);
    const auto [size, crc] = digest(in, buffer);
    checkDigest(in.path(), entry, size, crc);
  }
}

std::string readVerifiedFile(const std::string& dir, const std::string& file) {
  const auto entries = readManifest(dir, {file});
  const ManifestEntry& entry = findEntry(dir, entries, file);
  CheckpointFile in(fs::path(dir) / file);
  // Before allocating: a manifest entry cannot make this read more than the file holds.
  if (in.size() != entry.size) checkDigest(in.path(), entry, in.size(), entry.crc);
  std::string bytes = in.readAll();
  checkDigest(in.path(), entry, bytes.size(), crcOf(bytes.data(), bytes.size()));
  return bytes;
}

}  // namespace ringtrain
