#include "trainer/checkpoint/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace ringtrain {

std::string writeFailureHint(int error) {
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) {
    return "free space on the file system holding the output (or lower checkpoint.keep_last); "
           "the previous checkpoints are intact";
  }
  if (error == EACCES || error == EPERM || error == EROFS) {
    return "make the output directory writable, or choose another with --run-dir / --out";
  }
  return "check free space and permissions of the output directory";
}

FileWriter::FileWriter(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create", errno);
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void FileWriter::fail(const char* what, int error) const {
  throw CheckpointError(std::string(what) + " " + path_ + ": " + std::strerror(error),
                        writeFailureHint(error));
}

bool FileWriter::tryWrite(const void* data, size_t size) {
  if (error_ != 0) return false;
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : EIO;
      return false;
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void FileWriter::write(const void* data, size_t size) {
  if (!tryWrite(data, size)) throwIfFailed();
}

void FileWriter::throwIfFailed() const {
  if (error_ != 0) fail("cannot write", error_);
}

void FileWriter::finish() {
  throwIfFailed();
  if (::fsync(fd_) != 0) fail("cannot fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  // close() can be the first to report a failed write-back (e.g. on NFS).
  if (::close(fd) != 0) fail("cannot close", errno);
}

void syncDirectory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int error = fd < 0 ? errno : (::fsync(fd) != 0 ? errno : 0);
  if (fd >= 0) ::close(fd);
  if (error != 0) {
    throw CheckpointError("cannot fsync directory " + path + ": " + std::strerror(error),
                          writeFailureHint(error));
  }
}

namespace {
std::string temporaryName(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}
}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), tmpPath_(temporaryName(path_)), writer_(tmpPath_) {}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(tmpPath_.c_str());
}

void AtomicFile::commit() {
  writer_.finish();
  if (std::rename(tmpPath_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    throw CheckpointError(
        "cannot rename " + tmpPath_ + " to " + path_ + ": " + std::strerror(error),
        writeFailureHint(error));
  }
  committed_ = true;
  auto parent = std::filesystem::path(path_).parent_path();
  syncDirectory(parent.empty() ? "." : parent.string());
}

}  // namespace ringtrain
