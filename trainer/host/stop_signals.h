// The signals that stop a run at a checkpoint: SIGTERM (SLURM's scancel, preemption, the time
// limit, with KillWait seconds before SIGKILL), SIGUSR1 (sent ahead of the time limit with
// sbatch --signal=USR1@SECONDS) and SIGINT (the user's Ctrl-C; a second one ends the process
// at once). While a StopSignals lives, they no longer end the process: the handler records
// them, and the training loop agrees across the replicas to finish the step, write a
// checkpoint and end with stopExitCode().
#pragma once

#include <csignal>
#include <string>

#include "core/exit_codes.h"

namespace ringtrain {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the ones before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool termReceived() const;
  bool usr1Received() const;
  bool intReceived() const;
};

// The exit status of a run stopped for `signals` (as StopAgreement names them): a user's
// SIGINT alone is an interrupt; anything a scheduler sent is a preemption that a requeue
// continues.
inline int stopExitCode(const std::string& signals) {
  return signals == "SIGINT" ? kExitInterrupted : kExitPreempted;
}

}  // namespace ringtrain
