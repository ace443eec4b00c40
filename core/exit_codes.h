// The exit status of `ringtrain`, one per kind of failure, so that a supervisor, a SLURM
// script or a CI job can tell an error that a restart fixes (a lost peer) from one that
// recurs (a typo in the config). docs/exit-codes.md is the table for users;
// launch/ringtrain-run's restart policy reads these numbers.
//
// Under mpirun the first rank to fail ends the job with MPI_Abort(code), and mpirun exits
// with that code; a rank killed by a signal instead makes mpirun report the signal (128 + N
// from a shell), whichever mpirun notices first.
#pragma once

namespace ringtrain {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,    // an unexpected error: a bug, or a library's exception
  kExitUsage = 2,       // unknown command, unknown or malformed flag, missing option
  kExitConfig = 3,      // the config (file, --set, a value the run cannot use)
  kExitData = 4,        // a data file: missing, corrupt, too small
  kExitCheckpoint = 5,  // a checkpoint: unreadable, corrupt, of another model or world size
  kExitModel = 6,       // the model: unknown name, bad options, differs between ranks
  kExitTraining = 7,    // training went wrong: non-finite loss for too long, replicas diverged
  kExitLostPeer = 8,    // communication failed or timed out: a rank, host or link was lost
  // The run directory: held by another job, or an earlier run's (and no --resume).
  // (EX_CANTCREAT. Not 9: mpirun exits 9 when a rank was SIGKILLed, a lost node, which the
  // supervisor restarts; codes above 64 are no signal's number.)
  kExitRunDir = 73,
  // A scheduler's SIGTERM or SIGUSR1 stopped the run at a checkpoint: requeue and continue
  // with --resume auto (EX_TEMPFAIL, "try again later").
  kExitPreempted = 75,
  // The user's Ctrl-C (SIGINT) stopped the run at a checkpoint (128 + SIGINT, as a shell
  // reports a process that SIGINT ended).
  kExitInterrupted = 130,
};

}  // namespace ringtrain
