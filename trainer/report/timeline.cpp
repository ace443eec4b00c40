#include "trainer/report/timeline.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "trainer/report/timeline_view.h"

namespace ringtrain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

double systemMinusSteadyUs() {
  using namespace std::chrono;
  const auto system = duration<double, std::micro>(system_clock::now().time_since_epoch());
  const auto steady = duration<double, std::micro>(steady_clock::now().time_since_epoch());
  return system.count() - steady.count();
}

json argsObject(int64_t step, const Timeline::Args& args) {
  json object = json::object();
  object["step"] = step;
  for (const auto& [key, value] : args) object[key] = value;
  return object;
}

// The rank of a "rank-R.json" file name, or -1.
int rankOfFile(const fs::path& path) {
  static const std::regex name(R"(rank-(\d{1,9})\.json)");
  std::smatch match;
  const std::string file = path.filename().string();
  return std::regex_match(file, match, name) ? std::stoi(match[1].str()) : -1;
}

// Writes `text` to `path` atomically (aside, then renamed): a reader never sees half a file.
void writeAside(const std::string& path, const std::string& text, const std::string& hint,
                int rank) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write " + temporary, hint, rank);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw Error("cannot rename " + temporary + " to " + path, hint, rank);
  }
}

}  // namespace

std::optional<StepRange> parseTimelineSteps(const std::string& text) {
  if (text.empty()) return std::nullopt;
  static const std::regex form(R"(\s*steps\s+(\d{1,15})\s*(?:-\s*(\d{1,15}))?\s*)");
  std::smatch match;
  const std::string hint =
      "write train.timeline: \"steps 20-30\" (1-based, inclusive), or "
      "leave it empty for no timeline";
  if (!std::regex_match(text, match, form)) {
    throw ConfigError("train.timeline must be \"steps A-B\", got '" + text + "'", hint);
  }
  StepRange range;
  range.first = std::stoll(match[1].str());
  range.last = match[2].matched ? std::stoll(match[2].str()) : range.first;
  if (range.first < 1 || range.last < range.first) {
    throw ConfigError("train.timeline '" + text + "' names no step (steps count from 1 and B >= A)",
                      hint);
  }
  return range;
}

Timeline::Timeline(std::string dir, int rank, int worldSize, std::string host, StepRange steps)
    : path_((fs::path(dir) / ("rank-" + std::to_string(rank) + ".json")).string()),
      rank_(rank),
      host_(std::move(host)),
      steps_(steps),
      offsetUs_(systemMinusSteadyUs()) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw ConfigError("cannot create the timeline directory " + dir + ": " + ec.message(),
                      "give the run directory a writable place, or turn train.timeline off", rank);
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const int owner = rankOfFile(entry.path());
    if (owner < 0) continue;
    if (owner == rank || (rank == 0 && owner >= worldSize)) fs::remove(entry.path(), ec);
  }
  // Names the tracks in the viewer: a process per rank, ordered by rank.
  const json meta[] = {
      {{"name", "process_name"},
       {"ph", "M"},
       {"pid", rank},
       {"args", {{"name", "rank " + std::to_string(rank) + " (" + host_ + ")"}}}},
      {{"name", "process_sort_index"},
       {"ph", "M"},
       {"pid", rank},
       {"args", {{"sort_index", rank}}}},
      {{"name", "thread_name"},
       {"ph", "M"},
       {"pid", rank},
       {"tid", 0},
       {"args", {{"name", "train loop"}}}},
      {{"name", "thread_name"},
       {"ph", "M"},
       {"pid", rank},
       {"tid", 1},
       {"args", {{"name", "communication"}}}},
  };
  for (const json& event : meta) events_.push_back(event.dump());
}

Timeline::~Timeline() {
  if (!traced()) return;
  try {
    write();
  } catch (const std::exception& e) {
    std::cerr << "warning: " << e.what() << "\n";  // a destructor must not throw
  }
}

double Timeline::microseconds(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t.time_since_epoch()).count() + offsetUs_;
}

void Timeline::beginStep(int64_t step) {
  if (recording_ && !steps_.contains(step) && !written_) {
    recording_ = false;
    write();  // the range is over: its file is complete
  }
  step_ = step;
  recording_ = steps_.contains(step) && !written_;
  if (recording_) stepStart_ = Clock::now();
}

void Timeline::stepDone() {
  if (!recording_) return;
  span("step " + std::to_string(step_), Track::TrainLoop, stepStart_, Clock::now());
}

void Timeline::span(const std::string& name, Track track, Clock::time_point start,
                    Clock::time_point end, const Args& args) {
  if (!recording_) return;
  const double ts = microseconds(start);
  const json event = {{"name", name},
                      {"cat", track == Track::TrainLoop ? "train" : "comm"},
                      {"ph", "X"},
                      {"ts", ts},
                      {"dur", std::max(0.0, microseconds(end) - ts)},
                      {"pid", rank_},
                      {"tid", static_cast<int>(track)},
                      {"args", argsObject(step_, args)}};
  events_.push_back(event.dump());
}

void Timeline::asyncSpan(const std::string& name, int64_t id, Clock::time_point start,
                         Clock::time_point end, const Args& args) {
  if (!recording_) return;
  // Async events pair by (cat, id, name); the step makes ids unique across steps.
  const std::string uid = std::to_string(step_) + "." + std::to_string(id);
  json begin = {{"name", name},
                {"cat", "bucket"},
                {"ph", "b"},
                {"id", uid},
                {"ts", microseconds(start)},
                {"pid", rank_},
                {"tid", 1},
                {"args", argsObject(step_, args)}};
  json finish = {{"name", name}, {"cat", "bucket"},         {"ph", "e"},
                 {"id", uid},    {"ts", microseconds(end)}, {"pid", rank_},
                 {"tid", 1}};
  events_.push_back(begin.dump());
  events_.push_back(finish.dump());
}

void Timeline::write() {
  written_ = true;
  recording_ = false;
  const json other = {{"rank", rank_},
                      {"host", host_},
                      {"steps", std::to_string(steps_.first) + "-" + std::to_string(steps_.last)},
                      {"clock", "system clock, microseconds"}};
  std::string text =
      "{\"displayTimeUnit\":\"ms\",\"otherData\":" + other.dump() + ",\"traceEvents\":[\n";
  for (size_t i = 0; i < events_.size(); ++i) text += (i ? ",\n" : "") + events_[i];
  text += "\n]}\n";
  writeAside(path_, text, "check the run directory's free space and permissions", rank_);
}

MergedTimeline mergeTimelines(const std::string& runDir, const std::string& output,
                              const std::string& htmlOutput) {
  const fs::path dir = fs::path(runDir) / "timeline";
  const std::string hint = "train with train.timeline: \"steps A-B\" so every rank writes " +
                           dir.string() +
                           "/rank-R.json, then run ringtrain timeline on the run directory";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw UsageError("no timeline in " + runDir + ": " + dir.string() + " does not exist", hint);
  std::vector<std::pair<int, fs::path>> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const int rank = rankOfFile(entry.path());
    if (entry.is_regular_file() && rank >= 0) files.emplace_back(rank, entry.path());
  }
  if (files.empty()) throw UsageError("no rank-R.json files in " + dir.string(), hint);
  std::sort(files.begin(), files.end());
  json merged = {{"displayTimeUnit", "ms"}, {"traceEvents", json::array()}};
  json ranks = json::array();
  MergedTimeline result;
  for (const auto& [rank, path] : files) {
    std::ifstream in(path, std::ios::binary);
    json trace = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (trace.is_discarded() || !trace.is_object() || !trace.contains("traceEvents") ||
        !trace["traceEvents"].is_array()) {
      throw DataError(path.string() + " is not a Chrome trace (cut short, or not ringtrain's)",
                      "delete it and trace again; a rank killed before writing leaves none");
    }
    for (auto& event : trace["traceEvents"]) {
      if (event.is_object() && event.value("pid", -1) != rank) {
        throw DataError(path.string() + " holds events of pid " +
                            std::to_string(event.value("pid", -1)) + ", not of rank " +
                            std::to_string(rank),
                        "the timeline directory mixes files of different runs; trace again");
      }
      merged["traceEvents"].push_back(std::move(event));
      ++result.events;
    }
    if (trace.contains("otherData")) ranks.push_back(trace["otherData"]);
    ++result.ranks;
  }
  merged["otherData"] = {{"ranks", ranks}};
  const std::string text = merged.dump() + "\n";
  writeAside(output, text, "give -o a writable path", -1);
  if (!htmlOutput.empty()) {
    writeAside(htmlOutput, timelineHtml(text, "ringtrain timeline: " + runDir),
               "give --html a writable path", -1);
  }
  return result;
}

}  // namespace ringtrain
