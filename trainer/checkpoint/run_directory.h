// The run directory belongs to one job at a time, and a fresh run never lands in an earlier
// run's files. Without this, a second job on the same directory (or a fresh run into an old
// one) prunes the other's checkpoints as an abandoned timeline and appends to its
// metrics.jsonl. Only rank 0 calls these (it alone writes the run directory's own files).
#pragma once

#include <optional>
#include <string>

namespace ringtrain {

// The lock file inside the run directory, held for the job's lifetime.
inline constexpr const char* kRunLockFile = ".lock";

// An exclusive flock(2) on <runDir>/.lock (the directory is created if needed), released
// when this is destroyed or the process ends, however it ends: a killed job leaves no stale
// lock. The file holds "host pid start-time" of the holder, for the message another job
// gets: RunDirError naming them. On a file system without locks (flock fails with ENOLCK or
// ENOSYS) it locks nothing and warning() says so.
class RunDirectoryLock {
 public:
  explicit RunDirectoryLock(const std::string& runDir);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

  // Empty when the lock is held; else why nothing is locked.
  const std::string& warning() const { return warning_; }

 private:
  int fd_ = -1;
  std::string warning_;
};

// What a fresh run (no --resume) may start in: a missing or empty directory (the lock file
// aside). One holding an earlier run's files is refused with RunDirError, or with
// `overwrite` those files are moved into <runDir>.replaced-<UTC time> (never deleted),
// whose path is returned.
std::optional<std::string> prepareFreshRunDirectory(const std::string& runDir, bool overwrite);

}  // namespace ringtrain
