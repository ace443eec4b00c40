#include "trainer/report/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace ringtrain {

std::string jsonNumber(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN/Inf
  std::ostringstream s;
  s.precision(10);
  s << value;
  return s.str();
}

MetricsWriter::MetricsWriter(const std::string& path, std::vector<Sink> sinks)
    : out_(path, std::ios::app), sinks_(std::move(sinks)) {
  if (!out_) {
    throw Error("cannot open metrics file " + path, "check that the run directory is writable");
  }
}

void MetricsWriter::record(const std::string& kind,
                           const std::vector<std::pair<std::string, double>>& fields) {
  std::ostringstream line;
  line << "{\"kind\":\"" << kind << "\"";
  for (const auto& [key, value] : fields) line << ",\"" << key << "\":" << jsonNumber(value);
  line << "}\n";
  out_ << line.str();
  out_.flush();
  for (const auto& sink : sinks_) sink(kind, fields);
}

double MetricsWriter::secondsSinceStart() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void MetricsWriter::train(int64_t step, int64_t epoch, double loss, double lr,
                          double samplesPerSecond,
                          const std::vector<std::pair<std::string, double>>& extra) {
  std::vector<std::pair<std::string, double>> fields{{"step", static_cast<double>(step)},
                                                     {"epoch", static_cast<double>(epoch)},
                                                     {"loss", loss},
                                                     {"lr", lr},
                                                     {"samples_per_s", samplesPerSecond}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  fields.emplace_back("time_s", secondsSinceStart());
  record("train", fields);
}

void MetricsWriter::eval(int64_t step, int64_t epoch, double testLoss, double testAccuracy) {
  record("eval", {{"step", static_cast<double>(step)},
                  {"epoch", static_cast<double>(epoch)},
                  {"test_loss", testLoss},
                  {"test_accuracy", testAccuracy},
                  {"time_s", secondsSinceStart()}});
}

Straggler findStraggler(const std::vector<double>& workMs) {
  if (workMs.size() < 2) throw Error("findStraggler needs two ranks or more");
  Straggler slowest;
  slowest.rank = static_cast<int>(std::max_element(workMs.begin(), workMs.end()) - workMs.begin());
  slowest.workMs = workMs[slowest.rank];
  std::vector<double> others = workMs;
  others.erase(others.begin() + slowest.rank);
  std::sort(others.begin(), others.end());
  const size_t mid = others.size() / 2;
  slowest.othersMedianMs =
      others.size() % 2 == 1 ? others[mid] : 0.5 * (others[mid - 1] + others[mid]);
  return slowest;
}

std::optional<SlowLink> findSlowLink(const std::vector<LinkWaits>& waits) {
  const auto ranks = static_cast<int>(waits.size());
  std::vector<SlowLink> links;
  for (int r = 0; r < ranks; ++r) {
    const int to = waits[r].sendPeer;
    if (to < 0 || to >= ranks || to == r) continue;
    const double received = waits[to].recvPeer == r ? waits[to].recvWait : 0.0;
    links.push_back({r, to, std::min(waits[r].sendWait, received), 0});
  }
  if (links.size() < 2) return std::nullopt;
  const auto slowest = std::max_element(
      links.begin(), links.end(), [](const auto& a, const auto& b) { return a.waitMs < b.waitMs; });
  SlowLink result = *slowest;
  std::vector<double> others;
  for (const auto& link : links) {
    if (&link != &*slowest) others.push_back(link.waitMs);
  }
  std::sort(others.begin(), others.end());
  const size_t mid = others.size() / 2;
  result.othersMedianMs =
      others.size() % 2 == 1 ? others[mid] : 0.5 * (others[mid - 1] + others[mid]);
  return result;
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%02lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return buffer;
}

namespace {

// mpirun gives every rank a pseudo-terminal for stdout even when mpirun's own output goes to
// a file or pipe. So under MPI, rewrite in place only when the launching process (our parent,
// mpirun) writes to a terminal as well.
bool writesToTerminal(std::FILE* stream) {
  if (isatty(fileno(stream)) == 0) return false;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && std::getenv("PMI_SIZE") == nullptr) {
    return true;
  }
  char target[256] = {0};
  const std::string parentStdout = "/proc/" + std::to_string(getppid()) + "/fd/1";
  const ssize_t n = readlink(parentStdout.c_str(), target, sizeof target - 1);
  if (n <= 0) return false;
  const std::string path(target, static_cast<size_t>(n));
  return path.rfind("/dev/pts/", 0) == 0 || path.rfind("/dev/tty", 0) == 0;
}

}  // namespace

ProgressPrinter::ProgressPrinter(std::FILE* stream)
    : stream_(stream), interactive_(writesToTerminal(stream)) {}

void ProgressPrinter::update(int64_t epoch, int64_t epochs, int64_t step, int64_t totalSteps,
                             double loss, double samplesPerSecond, double etaSeconds) {
  char line[256];
  std::snprintf(line, sizeof line,
                "epoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f samples/s  ETA %s",
                static_cast<long long>(epoch + 1), static_cast<long long>(epochs),
                static_cast<long long>(step), static_cast<long long>(totalSteps), loss,
                samplesPerSecond, formatDuration(etaSeconds).c_str());
  if (interactive_) {
    std::fprintf(stream_, "\r\033[K%s", line);
    lineOpen_ = true;
  } else {
    std::fprintf(stream_, "%s\n", line);
  }
  std::fflush(stream_);
}

void ProgressPrinter::finishLine() {
  if (lineOpen_) {
    std::fputc('\n', stream_);
    lineOpen_ = false;
  }
}

void ProgressPrinter::println(const std::string& line) {
  finishLine();
  std::fprintf(stream_, "%s\n", line.c_str());
  std::fflush(stream_);
}

}  // namespace ringtrain
