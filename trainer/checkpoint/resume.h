// Support for resuming a run: what a resumed run tells the user about its config, and the
// roll-back of run outputs written after the checkpoint it resumes from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringtrain {

// Keys whose values differ between two resolved configs (Config::toYaml text), one
// "section.key: old -> new" per key, in the order of `newYaml`.
std::vector<std::string> configDifferences(const std::string& oldYaml, const std::string& newYaml);

// Rolls metrics.jsonl back to a checkpoint: drops the records of steps after `step` (written
// by the attempt that crashed after the checkpoint), so a resumed run's file reads as if it
// had never stopped. Atomic. A missing file is left alone.
void discardMetricsAfter(const std::string& metricsPath, int64_t step);

}  // namespace ringtrain
