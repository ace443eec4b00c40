#include "trainer/checkpoint/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

std::string utcStamp(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), format, &utc);
  return text;
}

std::string thisHost() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown host";
  return name;
}

// "host pid time" as the holder wrote it, or a placeholder while it is being written.
std::string holderOf(const std::string& path) {
  std::ifstream in(path);
  std::string host, pid, since;
  if (!(in >> host >> pid >> since)) return "another job (it has not written its name yet)";
  return "the job of pid " + pid + " on host " + host + " (since " + since + ")";
}

}  // namespace

RunDirectoryLock::RunDirectoryLock(const std::string& runDir) {
  std::error_code ec;
  fs::create_directories(runDir, ec);
  if (ec) {
    throw RunDirError("cannot create run directory " + runDir + ": " + ec.message(),
                      "choose a writable location with --run-dir", 0);
  }
  const std::string path = (fs::path(runDir) / kRunLockFile).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw RunDirError("cannot open " + path + ": " + std::strerror(errno),
                      "choose a writable location with --run-dir", 0);
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      ::close(fd_);
      fd_ = -1;
      throw RunDirError("run directory " + runDir + " is in use by " + holderOf(path),
                        "wait for that job to end, or give this one another --run-dir", 0);
    }
    warning_ = "cannot lock " + path + " (" + std::strerror(error) +
               "): nothing stops a second job from writing into this run directory";
    return;
  }
  std::ostringstream holder;
  holder << thisHost() << ' ' << ::getpid() << ' ' << utcStamp("%Y-%m-%dT%H:%M:%SZ") << '\n';
  const std::string text = holder.str();
  // Best effort: the name is for another job's message; the lock is the flock itself.
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const auto written = ::pwrite(fd_, text.data(), text.size(), 0);
  }
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
}

std::optional<std::string> prepareFreshRunDirectory(const std::string& runDir, bool overwrite) {
  std::vector<fs::path> earlier;
  std::error_code ec;
  for (fs::directory_iterator it(runDir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() != kRunLockFile) earlier.push_back(it->path());
  }
  if (earlier.empty()) return std::nullopt;
  if (!overwrite) {
    throw RunDirError(
        "run directory " + runDir + " holds an earlier run (" +
            earlier.front().filename().string() + (earlier.size() > 1 ? ", ..." : "") +
            "), and this run was not told to resume it",
        "continue it with --resume auto, train into another --run-dir (or train.run_name), or "
        "pass --overwrite to move the earlier run aside",
        0);
  }
  const std::string stem = runDir + ".replaced-" + utcStamp("%Y%m%dT%H%M%SZ");
  std::string aside = stem;
  for (int n = 2; fs::exists(aside, ec); ++n) aside = stem + "-" + std::to_string(n);
  fs::create_directories(aside, ec);
  if (ec) {
    throw RunDirError("--overwrite: cannot create " + aside + ": " + ec.message(),
                      "move the earlier run away yourself, or train into another --run-dir", 0);
  }
  // Entry by entry, leaving the lock (which this job holds) where it is.
  for (const fs::path& entry : earlier) {
    fs::rename(entry, fs::path(aside) / entry.filename(), ec);
    if (ec) {
      throw RunDirError(
          "--overwrite: cannot move " + entry.string() + " into " + aside + ": " + ec.message(),
          "move the earlier run away yourself, or train into another --run-dir", 0);
    }
  }
  return aside;
}

}  // namespace ringtrain
