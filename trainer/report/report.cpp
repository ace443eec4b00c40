#include "trainer/report/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

// One metrics.jsonl line as a record: "kind" and the numeric fields (true counts as 1).
// Whatever else a line holds (strings, null, false, nested objects and arrays that a newer
// writer or a user's own records may add) is skipped, not an error. Returns false when the
// line is not a JSON object.
bool parseRecord(const std::string& line, MetricRecord& out) {
  const nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return false;
  for (const auto& [key, field] : value.items()) {
    if (key == "kind" && field.is_string()) {
      out.kind = field.get<std::string>();
    } else if (field.is_number()) {
      out.values[key] = field.get<double>();
    } else if (field.is_boolean() && field.get<bool>()) {
      out.values[key] = 1.0;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// HTML and SVG helpers.

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string color(size_t run) { return kColors[run % (sizeof kColors / sizeof kColors[0])]; }

std::string format(double value, const char* spec = "%.4g") {
  if (!std::isfinite(value)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, spec, value);
  return buffer;
}

using Series = std::vector<std::pair<double, double>>;

Series seriesOf(const RunData& run, const std::string& kind, const std::string& xKey,
                const std::string& yKey) {
  Series points;
  for (const auto& r : run.records) {
    if (r.kind != kind) continue;
    const auto x = r.values.find(xKey), y = r.values.find(yKey);
    if (x != r.values.end() && y != r.values.end() && std::isfinite(x->second) &&
        std::isfinite(y->second)) {
      points.emplace_back(x->second, y->second);
    }
  }
  return points;
}

// Tick positions at 1, 2 or 5 times a power of ten, about `target` of them over [lo, hi].
std::vector<double> niceTicks(double lo, double hi, int target = 5) {
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double residual = raw / magnitude;
  const double step = magnitude * (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1);
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

// One line chart, every run's series overlaid: one <polyline class="curve"> per run that
// has points (a single point is drawn as a dot as well).
std::string lineChart(const std::string& title, const std::string& xLabel,
                      const std::vector<Series>& series, const std::vector<RunData>& runs) {
  constexpr double W = 460, H = 280, left = 62, right = 14, top = 30, bottom = 42;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series) {
    for (const auto& [x, y] : s) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  std::ostringstream svg;
  svg << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
      << " " << H << "\" role=\"img\" aria-label=\"" << escapeHtml(title) << "\">\n"
      << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">"
      << escapeHtml(title) << "</text>\n";
  if (!(x0 <= x1)) {
    svg << "<text x=\"" << W / 2 << "\" y=\"" << H / 2
        << "\" text-anchor=\"middle\" class=\"empty\">no data</text>\n</svg>\n";
    return svg.str();
  }
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12)
    y0 -= std::max(0.5, std::abs(y0) * 0.1), y1 += std::max(0.5, std::abs(y1) * 0.1);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  const auto py = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right
      << "\" height=\"" << H - top - bottom << "\" class=\"frame\"/>\n";
  for (const double t : niceTicks(x0, x1)) {
    svg << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\""
        << H - bottom << "\" class=\"grid\"/><text x=\"" << px(t) << "\" y=\"" << H - bottom + 14
        << "\" text-anchor=\"middle\">" << format(t) << "</text>\n";
  }
  for (const double t : niceTicks(y0, y1)) {
    svg << "<line x1=\"" << left << "\" y1=\"" << py(t) << "\" x2=\"" << W - right << "\" y2=\""
        << py(t) << "\" class=\"grid\"/><text x=\"" << left - 4 << "\" y=\"" << py(t) + 4
        << "\" text-anchor=\"end\">" << format(t) << "</text>\n";
  }
  svg << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 6
      << "\" text-anchor=\"middle\">" << escapeHtml(xLabel) << "</text>\n";
  for (size_t r = 0; r < series.size(); ++r) {
    if (series[r].empty()) continue;
    svg << "<polyline class=\"curve\" data-run=\"" << escapeHtml(runs[r].name) << "\" stroke=\""
        << color(r) << "\" points=\"";
    for (const auto& [x, y] : series[r])
      svg << format(px(x), "%.1f") << "," << format(py(y), "%.1f") << " ";
    svg << "\"/>\n";
    if (series[r].size() <= 12) {  // few points (evaluations): mark each one
      for (const auto& [x, y] : series[r]) {
        svg << "<circle cx=\"" << format(px(x), "%.1f") << "\" cy=\"" << format(py(y), "%.1f")
            << "\" r=\"3\" fill=\"" << color(r) << "\"/>\n";
      }
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

double lastValue(const RunData& run, const std::string& kind, const std::string& key) {
  double value = NAN;
  for (const auto& r : run.records) {
    const auto it = r.values.find(key);
    if (r.kind == kind && it != r.values.end()) value = it->second;
  }
  return value;
}

double meanValue(const RunData& run, const std::string& kind, const std::string& key) {
  double sum = 0.0;
  int n = 0;
  for (const auto& [x, y] : seriesOf(run, kind, "step", key)) sum += y, ++n;
  return n ? sum / n : NAN;
}

double bestValue(const RunData& run, const std::string& kind, const std::string& key, bool lowest) {
  double best = NAN;
  for (const auto& [x, y] : seriesOf(run, kind, "step", key)) {
    if (std::isnan(best) || (lowest ? y < best : y > best)) best = y;
  }
  return best;
}

std::string throughputSection(const std::vector<RunData>& runs) {
  std::ostringstream html;
  html << "<table>\n<tr><th>run</th><th>steps</th><th>wall time (s)</th><th>samples/s "
          "(mean of intervals)</th><th>samples/s (whole run)</th><th>forward+backward "
          "(ms/step)</th><th>sync wait (ms/step)</th><th>final train loss</th>"
          "<th>best val loss</th><th>best val accuracy</th></tr>\n";
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto& run = runs[r];
    double wall = lastValue(run, "summary", "wall_s");
    if (std::isnan(wall))
      wall = std::max(lastValue(run, "train", "time_s"), lastValue(run, "eval", "time_s"));
    double steps = lastValue(run, "summary", "step");
    if (std::isnan(steps)) steps = lastValue(run, "train", "step");
    html << "<tr><td><span class=\"swatch\" style=\"background:" << color(r) << "\"></span>"
         << escapeHtml(run.name) << "</td><td>" << format(steps, "%.0f") << "</td><td>"
         << format(wall, "%.1f") << "</td><td>"
         << format(meanValue(run, "train", "samples_per_s"), "%.0f") << "</td><td>"
         << format(lastValue(run, "summary", "samples_per_s"), "%.0f") << "</td><td>"
         << format(meanValue(run, "train", "forward_backward_ms"), "%.2f") << "</td><td>"
         << format(meanValue(run, "train", "sync_wait_ms"), "%.2f") << "</td><td>"
         << format(lastValue(run, "train", "loss")) << "</td><td>"
         << format(bestValue(run, "eval", "test_loss", true)) << "</td><td>"
         << format(bestValue(run, "eval", "test_accuracy", false)) << "</td></tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

std::string configSection(const std::vector<RunData>& runs) {
  std::set<std::string> keys;
  for (const auto& run : runs) {
    for (const auto& entry : run.config) keys.insert(entry.first);
  }
  std::ostringstream rows;
  int differing = 0;
  for (const auto& key : keys) {
    std::set<std::string> values;
    for (const auto& run : runs) {
      const auto it = run.config.find(key);
      values.insert(it == run.config.end() ? "\x01(absent)" : it->second);
    }
    if (values.size() < 2) continue;
    ++differing;
    rows << "<tr><td><code>" << escapeHtml(key) << "</code></td>";
    for (const auto& run : runs) {
      const auto it = run.config.find(key);
      rows << "<td>" << (it == run.config.end() ? "<em>absent</em>" : escapeHtml(it->second))
           << "</td>";
    }
    rows << "</tr>\n";
  }
  if (runs.size() < 2) return "<p>One run: nothing to compare.</p>\n";
  if (differing == 0) return "<p>The runs' configs are identical.</p>\n";
  std::ostringstream html;
  html << "<table class=\"config\">\n<tr><th>key</th>";
  for (const auto& run : runs) html << "<th>" << escapeHtml(run.name) << "</th>";
  html << "</tr>\n" << rows.str() << "</table>\n";
  return html.str();
}

}  // namespace

std::string escapeHtml(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<MetricRecord> parseMetricsJsonl(const std::string& text, const std::string& source) {
  std::vector<MetricRecord> records;
  std::istringstream in(text);
  std::string line;
  int64_t lineNumber = 0;
  const bool tornTail = !text.empty() && text.back() != '\n';
  size_t consumed = 0;
  while (std::getline(in, line)) {
    ++lineNumber;
    consumed += line.size() + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    MetricRecord record;
    if (parseRecord(line, record)) {
      records.push_back(std::move(record));
    } else if (!(tornTail && consumed >= text.size())) {
      throw DataError(source + ", line " + std::to_string(lineNumber) +
                          ": not a JSON object: " + line.substr(0, 80),
                      "metrics.jsonl holds one JSON object per line, as written by ringtrain");
    }
  }
  return records;
}

std::map<std::string, std::string> flattenYaml(const YAML::Node& node) {
  std::map<std::string, std::string> out;
  const std::function<void(const YAML::Node&, const std::string&)> walk =
      [&](const YAML::Node& n, const std::string& prefix) {
        if (n.IsMap()) {
          for (const auto& entry : n) {
            const auto key = entry.first.as<std::string>();
            walk(entry.second, prefix.empty() ? key : prefix + "." + key);
          }
        } else if (n.IsSequence()) {
          std::string items;
          for (const auto& item : n) {
            items +=
                (items.empty() ? "" : ", ") + (item.IsScalar() ? item.Scalar() : YAML::Dump(item));
          }
          out[prefix] = "[" + items + "]";
        } else if (n.IsScalar()) {
          out[prefix] = n.Scalar();
        } else if (!prefix.empty()) {
          out[prefix] = "";
        }
      };
  walk(node, "");
  return out;
}

RunData loadRun(const std::string& dir) {
  RunData run;
  run.dir = dir;
  run.name = fs::path(dir).lexically_normal().filename().string();
  if (run.name.empty())
    run.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  const auto metricsPath = (fs::path(dir) / "metrics.jsonl").string();
  std::ifstream in(metricsPath);
  if (!in) {
    throw DataError("no metrics.jsonl in " + dir,
                    "pass run directories, as written by `ringtrain train` (runs/<name>)");
  }
  std::stringstream text;
  text << in.rdbuf();
  run.records = parseMetricsJsonl(text.str(), metricsPath);
  const auto configPath = fs::path(dir) / "config.yaml";
  if (fs::exists(configPath)) {
    try {
      run.config = flattenYaml(YAML::LoadFile(configPath.string()));
    } catch (const YAML::Exception& e) {
      throw DataError("cannot parse " + configPath.string() + ": " + e.what());
    }
  }
  return run;
}

std::string renderReport(const std::vector<RunData>& runs) {
  if (runs.empty()) throw ConfigError("report: no runs given", "pass one or more run directories");
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<title>ringtrain report</title>\n<style>\n"
       << "body{font-family:sans-serif;margin:24px;color:#222}\n"
       << "table{border-collapse:collapse;margin:8px 0 24px}\n"
       << "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}\n"
       << ".charts{display:grid;grid-template-columns:repeat(2,470px);gap:8px}\n"
       << "svg text{font-size:11px;fill:#333}\nsvg text.title{font-size:13px;font-weight:bold}\n"
       << ".frame{fill:none;stroke:#999}\n.grid{stroke:#eee}\n"
       << ".curve{fill:none;stroke-width:1.8}\n"
       << ".swatch{display:inline-block;width:12px;height:12px;margin-right:6px}\n"
       << "</style>\n</head>\n<body>\n<h1>ringtrain report</h1>\n<p>" << runs.size()
       << " run(s):</p>\n<ul class=\"legend\">\n";
  for (size_t r = 0; r < runs.size(); ++r) {
    html << "<li><span class=\"swatch\" style=\"background:" << color(r) << "\"></span>"
         << escapeHtml(runs[r].name) << " <code>" << escapeHtml(runs[r].dir) << "</code></li>\n";
  }
  html << "</ul>\n<h2>Curves</h2>\n<div class=\"charts\">\n";
  struct Metric {
    const char* title;
    const char* kind;
    const char* key;
  };
  const Metric metrics[] = {{"training loss", "train", "loss"},
                            {"validation loss", "eval", "test_loss"},
                            {"validation accuracy", "eval", "test_accuracy"}};
  for (const auto& m : metrics) {
    for (const auto& [xKey, xLabel] :
         {std::pair<const char*, const char*>{"step", "step"}, {"time_s", "wall time (s)"}}) {
      std::vector<Series> series;
      for (const auto& run : runs) series.push_back(seriesOf(run, m.kind, xKey, m.key));
      html << lineChart(std::string(m.title) + " vs " + xLabel, xLabel, series, runs);
    }
  }
  html << "</div>\n<h2>Throughput</h2>\n"
       << throughputSection(runs) << "<h2>Config differences</h2>\n"
       << configSection(runs) << "</body>\n</html>\n";
  return html.str();
}

void writeReport(const std::vector<std::string>& runDirs, const std::string& outPath) {
  std::vector<RunData> runs;
  std::map<std::string, int> seen;
  for (const auto& dir : runDirs) {
    runs.push_back(loadRun(dir));
    const int n = ++seen[runs.back().name];
    if (n > 1) runs.back().name += " (" + std::to_string(n) + ")";
  }
  const std::string html = renderReport(runs);
  std::ofstream out(outPath, std::ios::binary | std::ios::trunc);
  out << html;
  out.close();
  if (!out) throw DataError("cannot write " + outPath, "choose a writable -o path");
}

}  // namespace ringtrain
