// The per-rank timeline (train.timeline: "steps A-B"): a Chrome trace (the JSON Trace Event
// Format that chrome://tracing and https://ui.perfetto.dev open) of what each rank did in
// steps A..B, like Horovod's timeline or the PyTorch profiler's chrome trace.
//
// Tracks, per rank (the trace's process, pid = rank):
//   tid 0 "train loop"     complete ("X") spans: step N, and inside it data wait, forward,
//                          backward, sync wait, optimizer; checkpoint and eval after a step
//   tid 1 "communication"  complete spans of the communication thread's work: each bucket's
//                          collective from the moment the thread started it to its end
//   async "bucket b ..."   one async span ("b"/"e") per bucket from its launch (by backward's
//                          hook or by synchronize) to its completion: these may overlap, so
//                          they are async rows rather than a thread's stack
// Timestamps are microseconds of the system clock (steady-clock readings shifted by the
// offset taken at start), so `ringtrain timeline RUN_DIR` can lay every rank's file on one
// time axis; across hosts the alignment is as good as their clock synchronisation (NTP/PTP).
//
// Nothing is recorded outside the range: each span asks recording() first, which is a
// branch on a bool, and the gradient synchronizer times its buckets only while recording.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ringtrain {

// train.timeline's steps, 1-based and inclusive, as the logs number them.
struct StepRange {
  int64_t first = 0;
  int64_t last = 0;
  bool contains(int64_t step) const { return step >= first && step <= last; }
};

// "steps A-B" (or "steps A", one step); "" is off (nullopt). Throws ConfigError naming
// train.timeline for anything else (B < A, A < 1).
std::optional<StepRange> parseTimelineSteps(const std::string& text);

class Timeline {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Track { TrainLoop = 0, Communication = 1 };
  using Args = std::vector<std::pair<std::string, double>>;

  // Writes <dir>/rank-<R>.json when the step after the range begins, when write() is
  // called, or (errors then only printed) when destroyed, whichever comes first. An earlier
  // attempt's file of this rank is removed (it would be merged with this run's others), and
  // rank 0 removes those of ranks >= `worldSize` (a resume at a smaller world size).
  Timeline(std::string dir, int rank, int worldSize, std::string host, StepRange steps);
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  // Called as step `step` (1-based) begins: recording() is true from here until the next
  // step begins, if `step` is in the range (so a checkpoint or eval after the step is traced
  // with it).
  void beginStep(int64_t step);
  // After the step's update: records the "step N" span since beginStep.
  void stepDone();
  bool recording() const { return recording_; }
  // Something was traced that is not written yet.
  bool traced() const { return !written_ && events_.size() > kTrackNames; }
  int64_t step() const { return step_; }

  // A complete span on `track`; `args` go to the event's args (with the step).
  void span(const std::string& name, Track track, Clock::time_point start, Clock::time_point end,
            const Args& args = {});
  // An async span (may overlap others): id distinguishes concurrent ones of one name.
  void asyncSpan(const std::string& name, int64_t id, Clock::time_point start,
                 Clock::time_point end, const Args& args = {});

  // Records a span on the train loop's track from construction to destruction, if the
  // timeline exists and records (a null timeline is allowed: the scope does nothing).
  class Scope {
   public:
    Scope(Timeline* timeline, const char* name)
        : timeline_(timeline && timeline->recording() ? timeline : nullptr), name_(name) {
      if (timeline_) start_ = Clock::now();
    }
    ~Scope() {
      if (timeline_) timeline_->span(name_, Track::TrainLoop, start_, Clock::now());
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Timeline* timeline_;
    const char* name_;
    Clock::time_point start_;
  };

  // The file this rank writes; writes it now (atomically: aside, then renamed). Throws
  // Error when the directory is not writable.
  const std::string& path() const { return path_; }
  void write();

 private:
  static constexpr size_t kTrackNames = 4;  // the metadata events that open every file
  double microseconds(Clock::time_point t) const;
  void addEvent(std::string json);

  const std::string path_;
  const int rank_;
  const std::string host_;
  const StepRange steps_;
  const double offsetUs_;  // system clock minus steady clock, microseconds
  bool recording_ = false;
  bool written_ = false;
  int64_t step_ = 0;
  Clock::time_point stepStart_;
  std::vector<std::string> events_;  // one JSON object each
};

// `ringtrain timeline RUN_DIR`: merges RUN_DIR/timeline/rank-*.json into one trace with a
// process (track group) per rank, written to `output`, and, if `htmlOutput` is not empty, its
// drawing (trainer/report/timeline_view.h) there. Returns the ranks and events merged.
// Throws UsageError when there is no timeline, DataError naming a file that is not a trace.
struct MergedTimeline {
  int ranks = 0;
  int64_t events = 0;
};
MergedTimeline mergeTimelines(const std::string& runDir, const std::string& output,
                              const std::string& htmlOutput = "");

}  // namespace ringtrain
