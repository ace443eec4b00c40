// What a run ran on, for bug reports and for comparing two runs: ringtrain's version and
// commit, LibTorch, the MPI library, NCCL and CUDA, BLAS, the CPU and GPUs, the launcher and
// the topology. `ringtrain env` prints it; every training run logs its one-line form first
// and writes env.yaml beside config.yaml in the run directory.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ringtrain {

struct EnvironmentReport {
  // In print order; every value is a single line ("none" or "unknown" rather than empty).
  std::vector<std::pair<std::string, std::string>> fields;

  const std::string& value(const std::string& key) const;  // "" when there is no such key
  std::string toYaml() const;
  // "ringtrain 0.9.0 (commit abc), LibTorch 2.15.0, Open MPI v4.1.4, ..." for the log.
  std::string oneLine() const;
};

// This process's environment; `hostOfRank` (every rank's host, see trainer/report/hosts.h)
// gives the topology, and may be empty for a process outside MPI. Needs MPI initialised
// when it is non-empty (it asks the MPI library for its version). Never throws: what cannot
// be found reads "unknown".
EnvironmentReport describeEnvironment(const std::vector<std::string>& hostOfRank);

}  // namespace ringtrain
