// Test-only fault injection: makes one rank misbehave at a chosen step, so the end-to-end
// tests can check that ringtrain survives (or reports) what breaks real jobs. Faults come
// from the environment variable RINGTRAIN_FAULT and never from the config, so a config file
// can never switch them on by accident; and only a build configured with
// -DRINGTRAIN_FAULT_INJECTION=ON (launch/test.sh's) reads the variable at all, so one left
// set in a job's environment cannot slow or kill a production run (it is ignored there with
// a warning). Unset (the normal case) costs one branch per hook.
//
//   RINGTRAIN_FAULT="<kind>:<key>=<value>:...[,<kind>:...]"
//
//   hang:rank=R:step=S[:at=sync|checkpoint][:seconds=T]
//       rank R sleeps T seconds (default 3600) at the start of step S, so it never joins
//       that step's gradient all-reduce (at=sync), or before the checkpoint hand-shake
//       after step S (at=checkpoint).
//   slow:rank=R:ms=M
//       rank R sleeps M milliseconds at the start of every step: a straggler.
//   kill:rank=R:step=S[:at=step|checkpoint][:once=FILE]
//       rank R kills itself with SIGKILL after completing step S (at=step), or, on rank 0,
//       in the middle of writing the checkpoint of step S: after its data files, before its
//       MANIFEST (at=checkpoint).
//   nan:rank=R:step=S
//       rank R's loss (and therefore its gradients) at step S is NaN.
//   model:rank=R
//       rank R registers one extra parameter "fault_injected" (a different model).
//   shm_full:rank=R
//       rank R sees no free space where shared-memory windows live (a full /dev/shm), so the
//       ring backend's shared gradient buckets fall back to ordinary memory on every rank.
//
// rank defaults to every rank. once=FILE fires the fault only if FILE does not exist and
// creates it first, so a restarted job runs past the fault (any kind accepts once=).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringtrain {

enum class FaultPoint {
  StepStart,             // hang at=sync, slow
  BeforeCheckpointSync,  // hang at=checkpoint
  AfterStep,             // kill at=step
  CheckpointWrite,       // kill at=checkpoint
  Loss,                  // nan
  BuildModel,            // model
  SharedMemorySpace,     // shm_full
};

class FaultInjector {
 public:
  FaultInjector() = default;  // no faults
  // Parses a RINGTRAIN_FAULT value. Throws ConfigError naming the bad part.
  explicit FaultInjector(const std::string& spec);

  bool empty() const { return faults_.empty(); }

  // True if a fault is set for (point, rank, step) and fires now (see once=). A hang or kill
  // fault acts here (sleeps, or never returns); for nan and model the caller acts on `true`.
  // `step` is ignored for BuildModel and SharedMemorySpace.
  bool trigger(FaultPoint point, int rank, int64_t step) const;

 private:
  struct Fault {
    FaultPoint point = FaultPoint::AfterStep;
    int rank = -1;      // -1: every rank
    int64_t step = -1;  // -1: every step (slow)
    double seconds = 3600.0;
    std::string onceFile;
  };
  std::vector<Fault> faults_;
};

// Whether this build reads RINGTRAIN_FAULT (configured with -DRINGTRAIN_FAULT_INJECTION=ON).
bool faultInjectionBuilt();

// The faults of this process, parsed from RINGTRAIN_FAULT on first use; none in a build
// without fault injection.
const FaultInjector& processFaults();

}  // namespace ringtrain
