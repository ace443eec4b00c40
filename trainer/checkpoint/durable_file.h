// Files that survive a crash: written with POSIX calls so a failure reports its real cause
// (errno: "No space left on device", "File too large", "Read-only file system") rather than
// a stream's bare failbit, and fsync'ed before anyone relies on them. Used by checkpoints
// and exports.
#pragma once

#include <cstddef>
#include <string>

namespace ringtrain {

// A new file opened for writing (truncated if it exists). Throws CheckpointError naming
// the path and the system's reason on any failure.
class FileWriter {
 public:
  explicit FileWriter(std::string path);
  ~FileWriter();  // closes without syncing if finish() was not reached
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t size);
  // For callers that must not throw from inside a callback (LibTorch's archive writer):
  // returns false instead of throwing, ignores writes after a failure, and keeps the first
  // failure's errno for throwIfFailed() and finish().
  bool tryWrite(const void* data, size_t size);
  void throwIfFailed() const;
  // fsync + close; the data is on disk when this returns.
  void finish();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const char* what, int error) const;

  std::string path_;
  int fd_ = -1;
  int error_ = 0;  // errno of the first failed write
};

// Writes `path` atomically: the data goes to a temporary file next to it, which commit()
// fsyncs and renames over `path` (then fsyncs the directory). Until commit() succeeds,
// `path` keeps its old content; a destroyed uncommitted AtomicFile removes its temporary.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size) { writer_.write(data, size); }
  void commit();

 private:
  std::string path_;
  std::string tmpPath_;
  FileWriter writer_;
  bool committed_ = false;
};

// fsync of a directory, so a rename or a new entry in it is durable. Throws CheckpointError.
void syncDirectory(const std::string& path);

// Hint for a failed write: what to do about errno `error`.
std::string writeFailureHint(int error);

}  // namespace ringtrain
