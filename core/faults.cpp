#include "core/faults.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace ringtrain {

namespace {

const char* const kHint =
    "RINGTRAIN_FAULT is a test-only option; see core/faults.h for its syntax, or "
    "unset it";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

int64_t parseInteger(const std::string& value, const std::string& item) {
  try {
    size_t used = 0;
    const int64_t parsed = std::stoll(value, &used);
    if (used == value.size()) return parsed;
  } catch (const std::exception&) {
  }
  throw ConfigError("RINGTRAIN_FAULT: '" + value + "' in '" + item + "' is not an integer", kHint);
}

}  // namespace

FaultInjector::FaultInjector(const std::string& spec) {
  for (const auto& item : split(spec, ',')) {
    if (item.empty()) continue;
    const auto parts = split(item, ':');
    const std::string kind = parts[0];
    Fault fault;
    std::string at;
    bool hasStep = false;
    bool hasMs = false;
    for (size_t i = 1; i < parts.size(); ++i) {
      const auto eq = parts[i].find('=');
      if (eq == std::string::npos) {
        throw ConfigError("RINGTRAIN_FAULT: '" + parts[i] + "' in '" + item + "' is not key=value",
                          kHint);
      }
      const std::string key = parts[i].substr(0, eq);
      const std::string value = parts[i].substr(eq + 1);
      if (key == "rank") {
        fault.rank = static_cast<int>(parseInteger(value, item));
      } else if (key == "step") {
        fault.step = parseInteger(value, item);
        hasStep = true;
      } else if (key == "seconds") {
        fault.seconds = static_cast<double>(parseInteger(value, item));
      } else if (key == "ms") {
        fault.seconds = static_cast<double>(parseInteger(value, item)) / 1000.0;
        hasMs = true;
      } else if (key == "at") {
        at = value;
      } else if (key == "once") {
        fault.onceFile = value;
      } else {
        throw ConfigError("RINGTRAIN_FAULT: unknown key '" + key + "' in '" + item + "'", kHint);
      }
    }
    if (kind == "hang") {
      fault.point = at == "checkpoint" ? FaultPoint::BeforeCheckpointSync : FaultPoint::StepStart;
      if (!at.empty() && at != "sync" && at != "checkpoint") at = "?";
    } else if (kind == "slow") {
      if (hasStep || !hasMs) {
        throw ConfigError(
            "RINGTRAIN_FAULT: '" + item + "' needs ms=M and no step= (it slows every step)", kHint);
      }
      fault.point = FaultPoint::StepStart;
      hasStep = true;  // every step: fault.step stays -1
    } else if (kind == "kill") {
      fault.point = at == "checkpoint" ? FaultPoint::CheckpointWrite : FaultPoint::AfterStep;
      if (!at.empty() && at != "step" && at != "checkpoint") at = "?";
    } else if (kind == "nan") {
      fault.point = FaultPoint::Loss;
    } else if (kind == "model") {
      fault.point = FaultPoint::BuildModel;
      hasStep = true;  // not needed
    } else if (kind == "shm_full") {
      fault.point = FaultPoint::SharedMemorySpace;
      hasStep = true;  // not needed
    } else {
      throw ConfigError("RINGTRAIN_FAULT: unknown fault '" + kind + "' in '" + item +
                            "' (known: hang, slow, kill, nan, model, shm_full)",
                        kHint);
    }
    if (at == "?") throw ConfigError("RINGTRAIN_FAULT: bad at= in '" + item + "'", kHint);
    if (!hasStep) throw ConfigError("RINGTRAIN_FAULT: '" + item + "' needs step=S", kHint);
    faults_.push_back(fault);
  }
}

bool FaultInjector::trigger(FaultPoint point, int rank, int64_t step) const {
  for (const auto& fault : faults_) {
    if (fault.point != point || (fault.rank >= 0 && fault.rank != rank)) continue;
    const bool stepless = point == FaultPoint::BuildModel || point == FaultPoint::SharedMemorySpace;
    if (!stepless && fault.step != -1 && fault.step != step) continue;
    if (!fault.onceFile.empty()) {
      std::error_code ec;
      if (std::filesystem::exists(fault.onceFile, ec)) continue;
      std::ofstream(fault.onceFile) << "fired\n";
    }
    switch (point) {
      case FaultPoint::StepStart:
      case FaultPoint::BeforeCheckpointSync:
        if (fault.step == -1) {  // slow: quietly, at every step
          std::this_thread::sleep_for(std::chrono::duration<double>(fault.seconds));
          break;
        }
        std::fprintf(stderr, "fault injection: rank %d hangs for %.0f s at step %lld\n", rank,
                     fault.seconds, static_cast<long long>(step));
        std::this_thread::sleep_for(std::chrono::duration<double>(fault.seconds));
        break;
      case FaultPoint::AfterStep:
      case FaultPoint::CheckpointWrite:
        std::fprintf(stderr, "fault injection: rank %d kills itself (SIGKILL) at step %lld%s\n",
                     rank, static_cast<long long>(step),
                     point == FaultPoint::CheckpointWrite ? " while writing a checkpoint" : "");
        std::fflush(stderr);
        // The point of this fault is an abrupt death with no clean-up, as an OOM kill does.
        std::raise(SIGKILL);
        break;
      case FaultPoint::Loss:
      case FaultPoint::BuildModel:
      case FaultPoint::SharedMemorySpace:
        break;
    }
    return true;
  }
  return false;
}

bool faultInjectionBuilt() {
#if defined(RINGTRAIN_FAULT_INJECTION) && RINGTRAIN_FAULT_INJECTION
  return true;
#else
  return false;
#endif
}

const FaultInjector& processFaults() {
  static const FaultInjector faults = [] {
    const char* spec = std::getenv("RINGTRAIN_FAULT");
    if (spec == nullptr || *spec == '\0') return FaultInjector();
    // A variable left in a job script must not slow or kill a production run: only a build
    // made for the tests reads it, and it says so on every rank.
    if (!faultInjectionBuilt()) {
      std::fprintf(stderr,
                   "warning: RINGTRAIN_FAULT is set and ignored: this ringtrain is built without "
                   "fault injection (a test-only option: -DRINGTRAIN_FAULT_INJECTION=ON) "
                   "HINT: unset RINGTRAIN_FAULT\n");
      return FaultInjector();
    }
    FaultInjector parsed(spec);
    std::fprintf(stderr, "fault injection is on (a test build): RINGTRAIN_FAULT=%s\n", spec);
    return parsed;
  }();
  return faults;
}

}  // namespace ringtrain
