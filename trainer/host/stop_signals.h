// The signals a scheduler sends before it stops a job: SIGTERM (SLURM's scancel, preemption,
// the time limit, with KillWait seconds before SIGKILL) and SIGUSR1 (sent ahead of the time
// limit with sbatch --signal=USR1@SECONDS). While a StopSignals lives, they no longer end the
// process: the handler records them, and the training loop agrees across the replicas to
// finish the step, write a checkpoint and end with kStoppedBySignalExitCode.
#pragma once

#include <csignal>
#include <string>

namespace ringtrain {

// EX_TEMPFAIL: "try again later" -- a requeued job continues with --resume auto.
inline constexpr int kStoppedBySignalExitCode = 75;

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the ones before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool termReceived() const;
  bool usr1Received() const;
};

}  // namespace ringtrain
