// Experiment reports (`ringtrain report RUN_DIR... -o report.html`): one self-contained HTML
// file (inline SVG, no scripts, no network) comparing runs:
//   - training loss, validation loss and validation accuracy against steps and against
//     wall time (time_s), one curve per run, overlaid;
//   - throughput and outcome per run (samples/s, wall time, best loss and accuracy);
//   - the config keys whose values differ between runs (from each run's config.yaml).
// Inputs are the stable files of a run directory: metrics.jsonl and config.yaml.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace ringtrain {

struct MetricRecord {
  std::string kind;                      // "train", "eval", "summary", ...
  std::map<std::string, double> values;  // numeric fields; JSON null is left out
};

struct RunData {
  std::string dir;
  std::string name;  // shown in legends and tables: the directory's name
  std::vector<MetricRecord> records;
  std::map<std::string, std::string> config;  // flattened: "optimizer.lr" -> "0.05"
};

// `text` with & < > " replaced by their entities: safe inside an element or an attribute.
std::string escapeHtml(const std::string& text);

// Parses metrics.jsonl text (JSON objects, one per line; fields that are not numbers, such
// as nested objects or arrays, are skipped). Throws DataError naming
// `source` and the line for a malformed line, except a torn last line without a newline
// (a run killed while writing), which is skipped.
std::vector<MetricRecord> parseMetricsJsonl(const std::string& text, const std::string& source);

// "section.key" -> scalar text for every leaf; sequences as "[a, b]".
std::map<std::string, std::string> flattenYaml(const YAML::Node& node);

// Reads <dir>/metrics.jsonl (required) and <dir>/config.yaml (optional). Throws DataError.
RunData loadRun(const std::string& dir);

// The HTML document for `runs` (at least one).
std::string renderReport(const std::vector<RunData>& runs);

// loadRun for each directory (names made unique), renderReport, and write `outPath`.
// Throws DataError / ConfigError.
void writeReport(const std::vector<std::string>& runDirs, const std::string& outPath);

}  // namespace ringtrain
