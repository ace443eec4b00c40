// One MPI shared-memory window over the ranks of a node (MPI_Win_allocate_shared): every rank
// can load and store every rank's part directly, so a reduction can read a neighbour's data
// where it lies instead of receiving a copy. The shared-memory all-reduce (shm_allreduce.h)
// runs over it.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "collectives/ring_allreduce.h"

namespace ringtrain {

class SharedWindow {
 public:
  // Collective over `node`, whose ranks must all share memory (a communicator from
  // MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) or one of its duplicates). Every rank gets a
  // zeroed, page-aligned part of `bytes` bytes (each part is placed apart from the others,
  // with alloc_shared_noncontig, so no cache line or page is shared between two ranks' data).
  // `node` must outlive the window: arrive() probes it to keep MPI progressing. `rankNames`
  // (optional) gives each node rank's number in the communicator the user knows, for
  // progress reports when the node is part of a larger job.
  SharedWindow(MPI_Comm node, std::int64_t bytes, std::vector<int> rankNames = {});
  // Frees the window (collective), except while an exception unwinds the stack: then the
  // other ranks are not freeing it too and MPI_Win_free would wait for them forever; the
  // process is on its way to MPI_Abort and the mapping goes with it.
  ~SharedWindow();
  SharedWindow(const SharedWindow&) = delete;
  SharedWindow& operator=(const SharedWindow&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::int64_t bytes() const { return bytes_; }
  // Rank r's part (this rank's own part is part(rank())).
  unsigned char* part(int r) const { return parts_[static_cast<std::size_t>(r)]; }

  // A barrier through memory: raises this rank's arrival count and waits until every rank's
  // count has reached it. Stores made before arrive() on any rank are visible after it on all
  // (release/acquire). Spins, yielding the core after a short while so that oversubscribed
  // ranks let the one they wait for run. Blocks forever if a rank never arrives (like
  // MPI_Wait on a dead peer). While it waits it calls MPI_Iprobe now and then, so that MPI
  // messages this rank still owes from earlier operations go out (another rank may be
  // blocked on them before it can arrive). `progress`, if given, names the rank waited for, so a
  // timed-out caller can say which (`phase` 0 of 2: before the reduce-scatter, 1: before the end).
  void arrive(RingProgress* progress, int phase);

 private:
  std::atomic<std::int64_t>& arrivals(int r) const;

  MPI_Comm node_;
  int rank_ = 0;
  int size_ = 1;
  std::int64_t bytes_ = 0;
  MPI_Win win_ = MPI_WIN_NULL;
  std::vector<unsigned char*> parts_;
  std::vector<int> rankNames_;
  std::vector<unsigned char*> counters_;  // per rank: a cache line with its arrival count
  std::int64_t generation_ = 0;
};

}  // namespace ringtrain
