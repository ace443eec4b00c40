// What a parameter server did in a run (trainer/ps/server.h), for the end-of-run report and
// the servers' TrainSummary.
#pragma once

#include <cstdint>

namespace ringtrain::ps {

struct ServerStats {
  int64_t pushes = 0;        // gradients received
  int64_t updates = 0;       // optimizer steps applied
  int64_t skipped = 0;       // pushes or steps not applied (non-finite gradients)
  int64_t maxClockGap = 0;   // largest (fastest - slowest) finished-step gap among workers
  int64_t heldReplies = 0;   // ssp: answers delayed by the staleness bound
  double wallSeconds = 0.0;  // inside serve()
  double cpuSeconds = 0.0;   // process CPU time inside serve() (getrusage)
};

}  // namespace ringtrain::ps
