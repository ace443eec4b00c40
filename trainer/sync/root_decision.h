// A decision that rank 0 alone takes (it alone touches the run directory) but every rank
// must share: when it fails, every rank ends with rank 0's reason, instead of rank 0 with the
// reason and the others with "lost peer" once mpirun takes the job down.
#pragma once

#include <chrono>
#include <functional>

#include "collectives/communicator.h"

namespace ringtrain {

// Collective. Runs `decide` on rank 0 of `comm` only and tells the other ranks how it went:
// when it throws, rank 0 rethrows its exception and every other rank throws a RelayedError
// with the same kind, message, hint and exit status (and its own rank). Returns normally on
// every rank when it succeeds.
void decideOnRankZero(Communicator& comm, std::chrono::milliseconds timeout,
                      const std::function<void()>& decide);

}  // namespace ringtrain
