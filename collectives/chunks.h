// How the collectives cut a buffer among the ranks: one home for the arithmetic that the ring,
// the shared-memory all-reduce and the sharded (ZeRO-1) optimizer must agree on exactly.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ringtrain {

// Chunk c of the n chunks a count-element buffer is cut into (the ring's "chunk", see
// ring_allreduce.cpp): len = count/n plus one for the first count%n chunks.
struct RingChunk {
  std::int64_t offset;  // in elements
  std::int64_t length;
};

inline RingChunk ringChunk(std::int64_t count, int n, int c) {
  const std::int64_t base = count / n;
  const std::int64_t extra = count % n;
  return {c * base + std::min<std::int64_t>(c, extra), base + (c < extra ? 1 : 0)};
}

// The shard of rank `rank` (of n) under Communicator::reduceScatter and allgatherShards: the
// chunk the ring's reduce-scatter leaves with that rank, (rank + 1) % n. Choosing the ring's
// own chunk is what lets a reduce-scatter be exactly the first half of the all-reduce, with
// its sums bitwise the all-reduce's.
inline RingChunk shardOf(std::int64_t count, int n, int rank) {
  return ringChunk(count, n, (rank + 1) % n);
}

}  // namespace ringtrain
