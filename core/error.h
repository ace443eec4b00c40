// Typed errors for ringtrain. Library code throws these; only main() turns them into an
// exit. Every error carries the rank that raised it (-1 when not known, e.g. before MPI is
// up) and an optional hint that tells the user how to fix the problem.
#pragma once

#include <stdexcept>
#include <string>

#include "core/exit_codes.h"

namespace ringtrain {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = {}, int rank = -1)
      : std::runtime_error(message), hint_(std::move(hint)), rank_(rank) {}

  const std::string& hint() const { return hint_; }
  int rank() const { return rank_; }
  // A short category name used in the one-line report ("config", "data", ...).
  virtual const char* kind() const { return "error"; }
  // The process's exit status when this error ends it (core/exit_codes.h).
  virtual int exitCode() const { return kExitInternal; }

  // "[rank 1] data error: <message>. HINT: <hint>" on one line.
  std::string oneLine(int fallbackRank = -1) const {
    const int r = rank_ >= 0 ? rank_ : fallbackRank;
    std::string line = r >= 0 ? "[rank " + std::to_string(r) + "] " : std::string();
    line += std::string(kind()) + " error: " + what();
    if (!hint_.empty()) line += " HINT: " + hint_;
    return line;
  }

 private:
  std::string hint_;
  int rank_;
};

#define RINGTRAIN_DEFINE_ERROR(Name, label, code)       \
  class Name : public Error {                           \
   public:                                              \
    using Error::Error;                                 \
    const char* kind() const override { return label; } \
    int exitCode() const override { return code; }      \
  };

RINGTRAIN_DEFINE_ERROR(UsageError, "usage", kExitUsage)  // the command line, not the config
RINGTRAIN_DEFINE_ERROR(ConfigError, "config", kExitConfig)
RINGTRAIN_DEFINE_ERROR(DataError, "data", kExitData)
RINGTRAIN_DEFINE_ERROR(CommError, "communication", kExitLostPeer)
RINGTRAIN_DEFINE_ERROR(TimeoutError, "timeout", kExitLostPeer)
RINGTRAIN_DEFINE_ERROR(CheckpointError, "checkpoint", kExitCheckpoint)
RINGTRAIN_DEFINE_ERROR(ModelError, "model", kExitModel)
RINGTRAIN_DEFINE_ERROR(TrainingError, "training", kExitTraining)
RINGTRAIN_DEFINE_ERROR(RunDirError, "run directory", kExitRunDir)

#undef RINGTRAIN_DEFINE_ERROR

// An error that one rank raised and every rank reports alike: its kind and exit status
// travel with the text (see trainer/sync/root_decision.h).
class RelayedError : public Error {
 public:
  RelayedError(std::string kind, int exitCode, const std::string& message, std::string hint,
               int rank)
      : Error(message, std::move(hint), rank), kind_(std::move(kind)), exitCode_(exitCode) {}
  const char* kind() const override { return kind_.c_str(); }
  int exitCode() const override { return exitCode_; }

 private:
  std::string kind_;
  int exitCode_;
};

}  // namespace ringtrain
