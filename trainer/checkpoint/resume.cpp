#include "trainer/checkpoint/resume.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "trainer/checkpoint/durable_file.h"

namespace ringtrain {

namespace {

// One flow-style line per value, so nested maps (model.options) compare as a whole.
std::string text(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "(unset)";
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

}  // namespace

std::vector<std::string> configDifferences(const std::string& oldYaml, const std::string& newYaml) {
  std::vector<std::string> differences;
  try {
    const YAML::Node before = YAML::Load(oldYaml);
    const YAML::Node after = YAML::Load(newYaml);
    const auto compare = [&](const YAML::Node& a, const YAML::Node& b, bool aIsNew) {
      for (const auto& section : a) {
        const auto name = section.first.as<std::string>();
        for (const auto& key : section.second) {
          const auto k = key.first.as<std::string>();
          const YAML::Node other = b[name] ? b[name][k] : YAML::Node();
          const std::string mine = text(key.second);
          const std::string theirs = text(other);
          if (aIsNew && mine != theirs) {
            differences.push_back(name + "." + k + ": " + theirs + " -> " + mine);
          } else if (!aIsNew && !other.IsDefined()) {
            differences.push_back(name + "." + k + ": " + mine + " -> (unset)");
          }
        }
      }
    };
    compare(after, before, true);
    compare(before, after, false);
  } catch (const YAML::Exception& e) {
    differences.push_back(std::string("(cannot compare the configs: ") + e.what() + ")");
  }
  return differences;
}

void discardMetricsAfter(const std::string& metricsPath, int64_t step) {
  std::ifstream in(metricsPath, std::ios::binary);
  if (!in) return;
  std::string kept;
  std::string line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const auto at = line.find("\"step\":");
    if (at != std::string::npos && std::atoll(line.c_str() + at + 7) > step) {
      dropped = true;
      continue;
    }
    kept += line + '\n';
  }
  in.close();
  if (!dropped) return;
  AtomicFile out(metricsPath);
  out.write(kept.data(), kept.size());
  out.commit();
}

}  // namespace ringtrain
