// Run outputs on rank 0: metrics.jsonl (one JSON object per line; a stable format read by
// reports, benchmarks and users' scripts) and the human-facing progress line.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectives/link_waits.h"

namespace ringtrain {

// Where one rank's steps of a log interval went, in seconds summed over the steps. The train
// record reports each as milliseconds per step, averaged over the ranks (docs/configuration.md,
// metrics.jsonl).
struct StepPhases {
  double data = 0;             // waiting for the loader's next batch
  double forwardBackward = 0;  // forward and backward; gradient hooks start the all-reduces
  double syncWait = 0;         // after backward: all-reduces still running, slower ranks
  double update = 0;           // gradient norm (or clipping) and the optimizer step
};

// Seconds from `start` to now, on the steady clock.
inline double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs f() and adds the seconds it took to `total` (a StepPhases field), also when f throws.
template <typename F>
auto timed(double& total, F&& f) {
  struct AddOnExit {
    double& total;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~AddOnExit() {
      total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  } adder{total};
  return f();
}

// The rank whose steps took longest apart from gradient synchronisation. The ranks meet in
// every all-reduce, so a step lasts as long as the slowest rank's work and the other ranks
// spend the difference waiting: the slowest rank is the one that waited least.
struct Straggler {
  int rank = 0;
  double workMs = 0;          // its step time minus its sync wait, ms per step
  double othersMedianMs = 0;  // the median of the other ranks' work
  double leadMs() const { return workMs - othersMedianMs; }
  double ratio() const { return othersMedianMs > 0 ? workMs / othersMedianMs : 1.0; }
};

// `workMs[r]` is rank r's step time minus its sync wait; needs two ranks or more. A tie goes
// to the lowest rank.
Straggler findStraggler(const std::vector<double>& workMs);

// The ring link that paces the ring. Every rank of a ring ends up waiting at the speed of
// its slowest link, mostly for data from its left neighbour; but only that link's sender
// also waits for its own sends to drain, while its receiver waits for their data. A link's
// wait is the smaller of those two, and the slowest link is the one whose wait is largest.
struct SlowLink {
  int from = -1;              // the sending rank
  int to = -1;                // the receiving rank
  double waitMs = 0;          // min(from's send wait, to's receive wait), ms per step
  double othersMedianMs = 0;  // the same for the ring's other links
  double ratio() const { return waitMs / std::max(othersMedianMs, 1e-3); }
};

// `waits[r]`: rank r's waits on its ring neighbours over an interval, here in ms per step
// (peers are indices into `waits`). Empty when fewer than two links ran.
std::optional<SlowLink> findSlowLink(const std::vector<LinkWaits>& waits);

// Appends records to <runDir>/metrics.jsonl; flushes each line so a killed run keeps them.
// Train and eval records carry "time_s": seconds since this writer was created (the start
// of the run, or of the resumed part of a run), for plots against wall time. Each record
// also goes to every sink, as written (TensorBoard, Prometheus: trainer/report/).
class MetricsWriter {
 public:
  using Sink = std::function<void(const std::string& kind,
                                  const std::vector<std::pair<std::string, double>>& fields)>;
  explicit MetricsWriter(const std::string& path, std::vector<Sink> sinks = {});
  // `extra` fields (such as the step phases) come after samples_per_s.
  void train(int64_t step, int64_t epoch, double loss, double lr, double samplesPerSecond,
             const std::vector<std::pair<std::string, double>>& extra = {});
  void eval(int64_t step, int64_t epoch, double testLoss, double testAccuracy);
  // Any extra record: {"kind":kind, key: value...}; values are numbers.
  void record(const std::string& kind, const std::vector<std::pair<std::string, double>>& fields);

 private:
  double secondsSinceStart() const;

  std::ofstream out_;
  std::vector<Sink> sinks_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Progress on a terminal is rewritten in place; otherwise one plain line per call.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::FILE* stream);
  void update(int64_t epoch, int64_t epochs, int64_t step, int64_t totalSteps, double loss,
              double samplesPerSecond, double etaSeconds);
  // Ends an in-place line before other output.
  void finishLine();
  void println(const std::string& line);

 private:
  std::FILE* stream_;
  bool interactive_;
  bool lineOpen_ = false;
};

std::string formatDuration(double seconds);
std::string jsonNumber(double value);

}  // namespace ringtrain
