// Deadlines of the trainer's collectives. Every collective is waited for with
// Work::wait(distributed.timeout_s) (the communicator's Work names the operation and, for the
// ring, the neighbour it waits for); these helpers add what only the trainer knows (the step
// and phase) to the TimeoutError that main() prints on each rank before MPI_Abort.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

#include "core/error.h"

namespace ringtrain {

// The first collectives of a job wait at least 5 minutes: ranks may reach them far apart
// (data loading from a shared file system, a slow node), which says nothing about a hang.
inline std::chrono::milliseconds startupTimeout(std::chrono::milliseconds timeout) {
  return std::max<std::chrono::milliseconds>(timeout, std::chrono::minutes(5));
}

// Runs f(); a TimeoutError from it is re-thrown with " [context]" appended, e.g.
// "[evaluation after step 400]", keeping its hint and rank.
template <typename F>
auto withTimeoutContext(const std::string& context, F&& f) {
  try {
    return f();
  } catch (const TimeoutError& e) {
    throw TimeoutError(std::string(e.what()) + " [" + context + "]", e.hint(), e.rank());
  }
}

}  // namespace ringtrain
