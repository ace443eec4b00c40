// A self-contained HTML view of a merged timeline: one SVG, drawn here (no script, no
// network), with a group of rows per rank: the train loop's steps, their phases, the
// communication thread, and the buckets' launch-to-completion spans in as many lanes as
// overlap. For a quick look and for the headless-browser check; Perfetto shows the same
// trace interactively.
#include "trainer/report/timeline_view.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/report/report.h"

namespace ringtrain {
namespace {

using nlohmann::json;

struct Bar {
  std::string name;
  double start = 0;  // microseconds
  double end = 0;
};

struct RankRows {
  std::string label;
  std::vector<Bar> steps, phases, comm;
  std::vector<std::vector<Bar>> bucketLanes;
};

// Stable colours per phase name; buckets and steps have their own.
const char* colourOf(const std::string& name) {
  static const std::map<std::string, const char*> colours = {
      {"data wait", "#9e9e9e"}, {"forward", "#4e79a7"},   {"backward", "#f28e2b"},
      {"sync wait", "#e15759"}, {"optimizer", "#59a14f"}, {"checkpoint", "#b07aa1"},
      {"eval", "#76b7b2"},      {"log", "#edc948"}};
  const auto it = colours.find(name);
  return it == colours.end() ? "#bab0ac" : it->second;
}

std::map<int, RankRows> rowsOf(const json& trace) {
  std::map<int, RankRows> ranks;
  std::map<std::pair<int, std::string>, Bar> open;  // async begins by (pid, id)
  for (const json& event : trace.at("traceEvents")) {
    if (!event.is_object()) continue;
    const int pid = event.value("pid", -1);
    const std::string ph = event.value("ph", "");
    const std::string name = event.value("name", "");
    RankRows& rows = ranks[pid];
    if (ph == "M" && name == "process_name") {
      rows.label = event["args"].value("name", "");
    } else if (ph == "X") {
      const double ts = event.value("ts", 0.0);
      const Bar bar{name, ts, ts + event.value("dur", 0.0)};
      if (event.value("tid", 0) == 1) {
        rows.comm.push_back(bar);
      } else if (name.rfind("step ", 0) == 0) {
        rows.steps.push_back(bar);
      } else {
        rows.phases.push_back(bar);
      }
    } else if (ph == "b") {
      open[{pid, event.value("id", "")}] = Bar{name, event.value("ts", 0.0), 0};
    } else if (ph == "e") {
      const auto it = open.find({pid, event.value("id", "")});
      if (it == open.end()) continue;
      Bar bar = it->second;
      bar.end = event.value("ts", 0.0);
      open.erase(it);
      // The first lane this bar does not overlap.
      auto lane =
          std::find_if(rows.bucketLanes.begin(), rows.bucketLanes.end(),
                       [&](const std::vector<Bar>& l) { return l.back().end <= bar.start; });
      if (lane == rows.bucketLanes.end()) {
        rows.bucketLanes.emplace_back();
        lane = rows.bucketLanes.end() - 1;
      }
      lane->push_back(bar);
    }
  }
  for (auto& [pid, rows] : ranks) {
    if (rows.label.empty()) rows.label = "rank " + std::to_string(pid);
  }
  return ranks;
}

}  // namespace

std::string timelineHtml(const std::string& traceJson, const std::string& title) {
  const auto ranks = rowsOf(json::parse(traceJson));
  double first = 1e300, last = -1e300;
  size_t bars = 0;
  const auto widen = [&](const std::vector<Bar>& list) {
    for (const Bar& b : list) {
      first = std::min(first, b.start);
      last = std::max(last, b.end);
      ++bars;
    }
  };
  for (const auto& [pid, rows] : ranks) {
    widen(rows.steps);
    widen(rows.phases);
    widen(rows.comm);
    for (const auto& lane : rows.bucketLanes) widen(lane);
  }
  if (bars == 0) first = last = 0;
  const double span = std::max(last - first, 1.0);
  constexpr int kLeft = 150, kWidth = 1100, kRow = 18, kGap = 14;
  const auto x = [&](double us) { return kLeft + (us - first) / span * kWidth; };

  std::ostringstream svg;
  int y = 30;
  const auto drawRow = [&](const std::string& label, const std::vector<Bar>& list,
                           const char* fixedColour, const std::string& cls) {
    svg << "<text x=\"4\" y=\"" << y + 13 << "\" class=\"row\">" << escapeHtml(label)
        << "</text>\n";
    for (const Bar& b : list) {
      char rect[320];
      std::snprintf(rect, sizeof rect,
                    "<rect class=\"%s\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
                    "fill=\"%s\"><title>",
                    cls.c_str(), x(b.start), y, std::max(0.5, x(b.end) - x(b.start)), kRow - 2,
                    fixedColour ? fixedColour : colourOf(b.name));
      svg << rect << escapeHtml(b.name) << " " << (b.end - b.start) / 1000.0
          << " ms</title></rect>\n";
    }
    y += kRow;
  };
  for (const auto& [pid, rows] : ranks) {
    svg << "<text x=\"4\" y=\"" << y + 12 << "\" class=\"rank\">" << escapeHtml(rows.label)
        << "</text>\n";
    y += kRow;
    drawRow("steps", rows.steps, "#d4d4d4", "step");
    drawRow("phases", rows.phases, nullptr, "phase");
    drawRow("comm thread", rows.comm, "#8cd17d", "comm");
    for (size_t l = 0; l < rows.bucketLanes.size(); ++l) {
      drawRow(l == 0 ? "buckets" : "", rows.bucketLanes[l], "#ff9d9a", "bucket");
    }
    y += kGap;
  }
  std::ostringstream page;
  char axis[200];
  std::snprintf(axis, sizeof axis, "%.1f ms from the first span", span / 1000.0);
  page << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << escapeHtml(title)
       << "</title>\n<style>body{font-family:sans-serif;margin:12px}"
          "text.row{font-size:12px;fill:#333}text.rank{font-size:13px;font-weight:bold}"
          "rect{stroke:#fff;stroke-width:0.3}</style></head><body>\n<h3>"
       << escapeHtml(title) << "</h3>\n<p id=\"summary\">" << ranks.size() << " rank(s), " << bars
       << " spans, " << axis << "; legend:";
  for (const char* name :
       {"data wait", "forward", "backward", "sync wait", "optimizer", "checkpoint", "eval"}) {
    page << " <span style=\"color:" << colourOf(name) << "\">&#9632; " << name << "</span>";
  }
  page << "</p>\n<svg id=\"timeline\" width=\"" << kLeft + kWidth + 10 << "\" height=\"" << y
       << "\">\n"
       << svg.str() << "</svg>\n</body></html>\n";
  return page.str();
}

}  // namespace ringtrain
