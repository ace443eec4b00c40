// All-reduce through a shared-memory window, for ranks on one node: the same sums as
// ringAllreduce, bit for bit, without sending a message. See shm_allreduce.cpp and
// docs/algorithms.md.
#pragma once

#include <cstdint>

#include "collectives/reduce_kernels.h"
#include "collectives/ring_allreduce.h"
#include "collectives/shared_window.h"

namespace ringtrain {

// Sums `count` elements of `dtype` that every rank holds at byte `offset` of its own part of
// `window`, in place: afterwards every rank's part holds the sum there. Collective over the
// window's ranks, all with the same offset, count and dtype. `scratch` is a block-sized
// buffer reused across calls (RingWorkspace); `progress` as in ringAllreduce.
// With `scale` != 1 (floating dtypes only) every rank's values are multiplied by it as they
// are read, before they are added: bitwise what scaleInPlace on every part followed by the
// plain sum gives (the average, with scale 1/n), without a pass of its own over the buffer.
void shmAllreduce(SharedWindow& window, std::int64_t offset, std::int64_t count, RingDtype dtype,
                  RingWorkspace& scratch, RingProgress* progress = nullptr, double scale = 1.0);

// The halves of shmAllreduce, for the sharded optimizer (Communicator::reduceScatter and
// allgatherShards). shmReduceScatter leaves this rank's part holding the reduced chunk
// shardOf(count, n, rank) (bitwise shmAllreduce's there); the rest of its part is left as it
// was. shmAllgatherShards copies every rank's chunk shardOf(count, n, r) of its part into
// every other part. Both collective over the window's ranks, arguments as shmAllreduce's.
void shmReduceScatter(SharedWindow& window, std::int64_t offset, std::int64_t count,
                      RingDtype dtype, RingWorkspace& scratch, RingProgress* progress = nullptr,
                      double scale = 1.0);
void shmAllgatherShards(SharedWindow& window, std::int64_t offset, std::int64_t count,
                        RingDtype dtype, RingProgress* progress = nullptr);

// The building blocks of shmAllreduce, shared with the hierarchical all-reduce
// (hierarchical_allreduce.h).

// Throws CommError unless `count` elements at byte `offset` fit the window and `scale` != 1
// comes with a floating dtype.
void checkShmArguments(const SharedWindow& window, std::int64_t offset, std::int64_t count,
                       RingDtype dtype, double scale);

enum class ChunkDestination { EveryPart, OwnPart };

// Step 2 of shmAllreduce: sums this rank's chunk, (rank + 1) % n, over every part in the
// ring's order (scaled as above) and stores it into every part or only into this rank's own.
// Call between two arrivals. Returns the chunk (in elements from `offset`).
RingChunk shmReduceOwnChunk(SharedWindow& window, std::int64_t offset, std::int64_t count,
                            RingDtype dtype, RingWorkspace& scratch, double scale,
                            ChunkDestination destination);

}  // namespace ringtrain
