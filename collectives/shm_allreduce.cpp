// Shared-memory all-reduce: a reduce-scatter and an all-gather like the ring's, but every
// rank reads its peers' data in place instead of receiving copies.
//
// Terms (as in ring_allreduce.cpp): the buffer is cut into n chunks, chunk c = elements
// [off(c), off(c)+len(c)), len = count/n plus one for the first count%n chunks. A block is
// the piece of a chunk summed at once in a small scratch buffer that stays in L1.
//
// 1. arrive: every rank's data is in place.
// 2. Rank r reduces chunk c = (r+1) % n, the chunk the ring leaves with r, block by block:
//    scratch = part(c)[block]; scratch += part(c+1)[block]; ... ; += part(c+n-1)[block]. That
//    is the ring's order of additions for chunk c (its partial sum starts at rank c and
//    travels right), so the result is bitwise the ring's, for every dtype and world size.
//    The block is then stored into every rank's part. For an average each value is
//    multiplied by 1/n as it is read (scaled in scratch, or on its way into the addition):
//    the same products the ring adds after every rank has scaled its own buffer.
// 3. arrive: every chunk is in every part; no rank touches another's part until the next
//    call's first arrive.
//
// Each rank reads (n-1)/n of the buffer from other parts and writes as much into them: the
// bytes crossing between cores are the ring's 2(n-1)/n, but there is no copy into or out of
// a message buffer, no MPI protocol and no pipeline to fill. Parts never overlap, and in step
// 2 each rank writes only its own chunk's range, so the ranks never write the same line.
#include "collectives/shm_allreduce.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace ringtrain {

void checkShmArguments(const SharedWindow& window, std::int64_t offset, std::int64_t count,
                       RingDtype dtype, double scale) {
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  if (count < 0 || offset < 0 || offset + count * elem > window.bytes()) {
    throw CommError("shared-memory all-reduce: " + std::to_string(count) + " elements at byte " +
                        std::to_string(offset) + " do not fit the " +
                        std::to_string(window.bytes()) + "-byte shared window",
                    {}, window.rank());
  }
  if (scale != 1.0 && !isFloating(dtype)) {
    throw CommError("shared-memory all-reduce: cannot scale " + dtypeName(dtype) + " values", {},
                    window.rank());
  }
}

RingChunk shmReduceOwnChunk(SharedWindow& window, std::int64_t offset, std::int64_t count,
                            RingDtype dtype, RingWorkspace& scratch, double scale,
                            ChunkDestination destination) {
  const int n = window.size();
  const int c = (window.rank() + 1) % n;
  const RingChunk chunk = ringChunk(count, n, c);
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  constexpr std::int64_t kBlockBytes = 16 * 1024;  // scratch stays in a 32 KiB L1
  const std::int64_t blockElems = kBlockBytes / elem;
  unsigned char* sum = scratch.scratch(static_cast<std::size_t>(kBlockBytes));
  const std::int64_t first = offset + chunk.offset * elem;
  const bool scaled = scale != 1.0;
  for (std::int64_t done = 0; done < chunk.length; done += blockElems) {
    const std::int64_t m = std::min(blockElems, chunk.length - done);
    const std::int64_t at = first + done * elem;
    const auto bytes = static_cast<std::size_t>(m * elem);
    std::memcpy(sum, window.part(c) + at, bytes);
    if (scaled) {
      scaleInPlace(sum, m, dtype, scale);
      for (int k = 1; k < n; ++k) {
        reduceScaledSum(sum, window.part((c + k) % n) + at, m, dtype, scale);
      }
    } else {
      for (int k = 1; k < n; ++k) reduceSum(sum, window.part((c + k) % n) + at, m, dtype);
    }
    if (destination == ChunkDestination::EveryPart) {
      for (int r = 0; r < n; ++r) std::memcpy(window.part(r) + at, sum, bytes);
    } else {
      std::memcpy(window.part(window.rank()) + at, sum, bytes);
    }
  }
  return chunk;
}

void shmAllreduce(SharedWindow& window, std::int64_t offset, std::int64_t count, RingDtype dtype,
                  RingWorkspace& scratch, RingProgress* progress, double scale) {
  checkShmArguments(window, offset, count, dtype, scale);
  if (count == 0) return;
  if (window.size() == 1) {
    if (scale != 1.0) scaleInPlace(window.part(0) + offset, count, dtype, scale);
    return;
  }
  window.arrive(progress, 0);
  shmReduceOwnChunk(window, offset, count, dtype, scratch, scale, ChunkDestination::EveryPart);
  window.arrive(progress, 1);
}

void shmReduceScatter(SharedWindow& window, std::int64_t offset, std::int64_t count,
                      RingDtype dtype, RingWorkspace& scratch, RingProgress* progress,
                      double scale) {
  checkShmArguments(window, offset, count, dtype, scale);
  if (count == 0) return;
  if (window.size() == 1) {
    if (scale != 1.0) scaleInPlace(window.part(0) + offset, count, dtype, scale);
    return;
  }
  window.arrive(progress, 0);
  shmReduceOwnChunk(window, offset, count, dtype, scratch, scale, ChunkDestination::OwnPart);
  // The peers read this part's other chunks until they are done: the caller may overwrite
  // them once every rank has arrived here.
  window.arrive(progress, 1);
}

void shmAllgatherShards(SharedWindow& window, std::int64_t offset, std::int64_t count,
                        RingDtype dtype, RingProgress* progress) {
  checkShmArguments(window, offset, count, dtype, 1.0);
  const int n = window.size();
  if (count == 0 || n == 1) return;
  window.arrive(progress, 0);
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  unsigned char* mine = window.part(window.rank());
  for (int owner = 0; owner < n; ++owner) {
    if (owner == window.rank()) continue;
    const RingChunk shard = shardOf(count, n, owner);
    const std::int64_t at = offset + shard.offset * elem;
    std::memcpy(mine + at, window.part(owner) + at, static_cast<std::size_t>(shard.length * elem));
  }
  window.arrive(progress, 1);
}

}  // namespace ringtrain
