// ringtrain's own bandwidth-optimal ring all-reduce over MPI point-to-point (see
// ring_allreduce.cpp and docs/algorithms.md for the algorithm).
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "collectives/chunks.h"
#include "collectives/link_waits.h"
#include "collectives/reduce_kernels.h"

namespace ringtrain {

// Where a running ring all-reduce is blocked, so that a timeout on another thread can name
// the neighbour it waits for. The ring writes it with relaxed atomics; any thread may read.
class RingProgress {
 public:
  enum class Waiting { Nothing = 0, Recv = 1, Send = 2 };

  void set(Waiting what, int peer, int step, int totalSteps);
  void clear();
  // e.g. "waiting for data from rank 3 (step 2 of 6, reduce-scatter)" or
  // "not blocked in the ring"; with `hostOfRank` (indexed by the peer's rank name), "rank 3
  // on host node-2 (...)".
  std::string describe(const std::vector<std::string>& hostOfRank = {}) const;

  // Adds time blocked on `peer` (Send: to take our data; Recv: for its data).
  void addWait(Waiting what, int peer, double seconds);
  // The totals of addWait since this object was made.
  LinkWaits waits() const;

 private:
  std::atomic<int> what_{0};
  std::atomic<int> sendPeer_{-1};
  std::atomic<int> recvPeer_{-1};
  std::atomic<long long> sendWaitNs_{0};
  std::atomic<long long> recvWaitNs_{0};
  std::atomic<int> peer_{-1};
  std::atomic<int> step_{-1};
  std::atomic<int> totalSteps_{0};
};

// Scratch memory and bookkeeping reused across calls, so a training loop that all-reduces
// every step does not allocate (and page-fault) every step. One per thread that runs rings;
// its contents are private to ringAllreduce.
class RingWorkspace {
 public:
  unsigned char* scratch(std::size_t bytes);
  std::vector<MPI_Request>& sendRequests() { return sendRequests_; }
  std::vector<char>& sendPosted() { return sendPosted_; }
  std::vector<MPI_Request>& recvRequests() { return recvRequests_; }
  std::vector<std::int64_t>& units() { return units_; }

 private:
  std::vector<unsigned char> scratch_;
  std::vector<MPI_Request> sendRequests_;
  std::vector<char> sendPosted_;
  std::vector<MPI_Request> recvRequests_;
  std::vector<std::int64_t> units_;
};

// Segments of a ring between hosts. Over TCP, Open MPI sends a message above its eager limit
// (btl_tcp_eager_limit, 64 KiB) only after the receiver's go-ahead. In a ring of two the
// left and right neighbour are one host, so that go-ahead queues behind the megabytes the
// peer is sending here on the same connection: the 2-host ring ran at 0.58x a 1 Gbit/s
// link with 256 KiB segments and at 0.96x with 32 KiB ones, which go eagerly
// (bench/RESULTS.md, "Across hosts"). In a longer ring the go-ahead travels a connection
// that carries nothing else, so the default segments stay: their sends wait on a slow
// link, which is how the straggler report names it (eager sends complete at once).
constexpr std::int64_t kSegmentBytesTwoHostRing = 32 * 1024;

// Which halves of the ring run: both (an all-reduce), the reduce-scatter only (afterwards rank
// r holds the reduced chunk shardOf(count, n, r); the rest of the buffer is partial sums), or
// the all-gather only (rank r's chunk shardOf(count, n, r) goes to every rank).
enum class RingPhases { AllReduce, ReduceScatter, AllGather };

struct RingOptions {
  // Bytes of a segment (the unit in flight at once); rounded down to whole elements.
  // 256 KiB keeps the receive slots resident in a core's L2 cache; a ring of two hosts
  // uses kSegmentBytesTwoHostRing.
  std::int64_t segmentBytes = 256 * 1024;
  // Receive slots (segments received ahead of the reduction); at least 2 (double buffering).
  int slots = 3;
  RingProgress* progress = nullptr;    // optional: updated while blocked
  RingWorkspace* workspace = nullptr;  // optional: a temporary one is used if null
  // Optional: the number to report for each rank of `comm` (its rank in the communicator
  // the user knows) in progress and errors, when the ring runs over a sub-communicator.
  const std::vector<int>* rankNames = nullptr;
  RingPhases phases = RingPhases::AllReduce;
};

// (The shared-memory all-reduce cuts buffers into the same chunks, see chunks.h, which is what
// makes its sums bitwise the ring's.)
//
// Sums `count` elements of `dtype` at `data` across all ranks of `comm`, in place; every rank
// ends with the same result. Collective: every rank of `comm` must call it, in the same order
// relative to other collectives on `comm`, with the same count and dtype. Correct for any
// count >= 0 and any world size >= 1. Throws CommError on MPI failure; `comm` must use
// MPI_ERRORS_RETURN for that (MpiComm does). options.phases runs only one half.
void ringAllreduce(void* data, std::int64_t count, RingDtype dtype, MPI_Comm comm,
                   const RingOptions& options = {});

}  // namespace ringtrain
