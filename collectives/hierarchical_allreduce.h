// All-reduce for ranks spread over several nodes: shared memory inside each node, the ring
// between nodes. See hierarchical_allreduce.cpp and docs/algorithms.md.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "collectives/reduce_kernels.h"
#include "collectives/ring_allreduce.h"
#include "collectives/shared_window.h"

namespace ringtrain {

// Sums `count` elements of `dtype` at byte `offset` of every rank's part of `window` across
// all ranks of all nodes, in place. `window` spans this node's ranks; `across` holds one rank
// of every node, the ones with this rank's node rank (every node must have the same number of
// ranks). Collective over every node's window and every `across` communicator. `scale` as in
// shmAllreduce (1/world size for an average). `rankNames` names `across`'s ranks in progress
// reports (optional, as in RingOptions). Every rank ends with the same bits.
void hierarchicalAllreduce(SharedWindow& window, std::int64_t offset, std::int64_t count,
                           RingDtype dtype, MPI_Comm across, RingWorkspace& workspace,
                           RingProgress* progress = nullptr, double scale = 1.0,
                           const std::vector<int>* rankNames = nullptr);

}  // namespace ringtrain
