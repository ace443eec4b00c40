// main() for programs that run on every rank of an MPI job (benchmarks, the multi-process
// tests, a user's own trainer): the start-up and error handling every such main repeats.
#pragma once

#include <functional>

#include "collectives/mpi_context.h"

namespace ringtrain {

// Initialises MPI (MpiContext), runs `body` and returns its exit status. An error escaping
// `body` is printed as one line naming the rank, and then the whole job is aborted with
// `failureStatus`: the other ranks may be waiting in a collective for this one, and would
// otherwise hang. If MPI cannot start, prints why and returns `failureStatus`.
int runMpiMain(int* argc, char*** argv, const std::function<int(MpiContext&)>& body,
               int failureStatus = 1);

}  // namespace ringtrain
