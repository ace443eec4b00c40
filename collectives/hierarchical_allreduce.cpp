// Hierarchical all-reduce: M nodes of L ranks each. Inside a node the ranks share memory (a
// SharedWindow); between nodes they exchange messages. Rank l of every node forms, with its
// peers of the same node rank, an "across" communicator of M ranks.
//
// Terms (as in shm_allreduce.cpp): the buffer is cut into L chunks; node rank l owns chunk
// (l + 1) % L, the same chunk on every node.
//
// 1. arrive: every node rank's data is in its part.
// 2. Node rank l sums its chunk over the node's L parts (shared memory, the ring's order,
//    scaled by 1/(M L) for an average) into its own part only.
// 3. The M owners of that chunk, one per node, all-reduce it over `across` with the ring
//    (ring_allreduce.cpp): L rings of M ranks run at once, each over 1/L of the buffer.
// 4. Node rank l copies the finished chunk into the other parts of its node.
// 5. arrive: every part holds the whole sum.
//
// Bytes: inside a node, as shmAllreduce (no messages); between nodes each node sends
// 2(M-1)/M of the buffer, split over its L ranks. A flat ring over all M L ranks moves as
// much across the nodes' links but takes 2(ML-1) latency-bound steps instead of 2(M-1), and
// sends every byte that stays inside a node through MPI's copies instead of shared memory.
//
// Every rank ends with the same bits: the ring gives all owners of a chunk the same result,
// and step 4 copies it. The order of additions (node sums first) differs from a flat ring's,
// so results differ from a single-node run's in the last bits, as with NCCL's trees.
#include "collectives/hierarchical_allreduce.h"

#include <cstring>

#include "collectives/shm_allreduce.h"
#include "core/error.h"

namespace ringtrain {

void hierarchicalAllreduce(SharedWindow& window, std::int64_t offset, std::int64_t count,
                           RingDtype dtype, MPI_Comm across, RingWorkspace& workspace,
                           RingProgress* progress, double scale,
                           const std::vector<int>* rankNames) {
  checkShmArguments(window, offset, count, dtype, scale);
  if (count == 0) return;
  window.arrive(progress, 0);
  const RingChunk chunk =
      shmReduceOwnChunk(window, offset, count, dtype, workspace, scale, ChunkDestination::OwnPart);
  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  const std::int64_t first = offset + chunk.offset * elem;
  unsigned char* mine = window.part(window.rank()) + first;
  RingOptions options;
  int nodes = 1;
  MPI_Comm_size(across, &nodes);  // `across` joins the nodes: each link crosses hosts
  if (nodes == 2) options.segmentBytes = kSegmentBytesTwoHostRing;
  options.progress = progress;
  options.workspace = &workspace;
  options.rankNames = rankNames;
  ringAllreduce(mine, chunk.length, dtype, across, options);
  const auto bytes = static_cast<std::size_t>(chunk.length * elem);
  for (int r = 0; r < window.size(); ++r) {
    if (r != window.rank()) std::memcpy(window.part(r) + first, mine, bytes);
  }
  window.arrive(progress, 1);
}

}  // namespace ringtrain
