#include "collectives/shared_window.h"

#include <sched.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "collectives/mpi_context.h"
#include "core/error.h"

namespace ringtrain {
namespace {

// The arrival counter gets a cache line to itself, ahead of the data, so spinning on it
// never touches a line the data lives in.
constexpr std::int64_t kCounterBytes = 64;
// Spins before the first sched_yield: a peer that is about to arrive usually does so within
// a few microseconds, and yielding first would add a scheduler round trip to every step.
constexpr int kSpinsBeforeYield = 4096;
// Spins between two calls into MPI's progress engine (a probe costs well under a microsecond).
constexpr int kSpinsPerProgress = 64;

}  // namespace

SharedWindow::SharedWindow(MPI_Comm node, std::int64_t bytes, std::vector<int> rankNames)
    : node_(node), bytes_(bytes), rankNames_(std::move(rankNames)) {
  checkMpi(MPI_Comm_rank(node, &rank_), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(node, &size_), "MPI_Comm_size", rank_);
  if (rankNames_.empty()) {
    for (int r = 0; r < size_; ++r) rankNames_.push_back(r);
  }
  if (static_cast<int>(rankNames_.size()) != size_) {
    throw CommError("SharedWindow: " + std::to_string(rankNames_.size()) + " rank names for " +
                        std::to_string(size_) + " ranks",
                    {}, rank_);
  }
  if (bytes < 0) throw CommError("SharedWindow: negative size", {}, rank_);
  MPI_Info info = MPI_INFO_NULL;
  checkMpi(MPI_Info_create(&info), "MPI_Info_create", rank_);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  unsigned char* mine = nullptr;
  const int rc = MPI_Win_allocate_shared(kCounterBytes + bytes, 1, info, node, &mine, &win_);
  MPI_Info_free(&info);
  checkMpi(rc, "MPI_Win_allocate_shared", rank_);
  // The counter is an atomic object living in shared memory: constructed in place, by its
  // owner only, before the barrier below makes it visible.
  ::new (static_cast<void*>(mine)) std::atomic<std::int64_t>(0);
  std::memset(mine + kCounterBytes, 0, static_cast<std::size_t>(bytes));
  for (int r = 0; r < size_; ++r) {
    MPI_Aint size = 0;
    int unit = 0;
    unsigned char* base = nullptr;
    checkMpi(MPI_Win_shared_query(win_, r, &size, &unit, &base), "MPI_Win_shared_query", rank_);
    counters_.push_back(base);
    parts_.push_back(base + kCounterBytes);
  }
  checkMpi(MPI_Barrier(node), "MPI_Barrier (shared window)", rank_);
}

SharedWindow::~SharedWindow() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised && std::uncaught_exceptions() == 0) MPI_Win_free(&win_);
}

std::atomic<std::int64_t>& SharedWindow::arrivals(int r) const {
  return *std::launder(
      reinterpret_cast<std::atomic<std::int64_t>*>(counters_[static_cast<std::size_t>(r)]));
}

void SharedWindow::arrive(RingProgress* progress, int phase) {
  ++generation_;
  arrivals(rank_).store(generation_, std::memory_order_release);
  for (int k = 1; k < size_; ++k) {
    const int r = (rank_ + k) % size_;
    std::atomic<std::int64_t>& count = arrivals(r);
    if (count.load(std::memory_order_acquire) >= generation_) continue;
    if (progress)
      progress->set(RingProgress::Waiting::Recv, rankNames_[static_cast<std::size_t>(r)], phase, 2);
    for (std::int64_t spins = 0; count.load(std::memory_order_acquire) < generation_; ++spins) {
      // Keep MPI progressing while waiting. A message this rank still owes (such as the
      // acknowledgement of a large receive that an earlier ring all-reduce has finished
      // here) only goes out from inside an MPI call, and the rank waiting for it may be the
      // one this loop waits for: without this, the two wait for each other forever.
      if (spins % kSpinsPerProgress == kSpinsPerProgress - 1) {
        int flag = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, node_, &flag, MPI_STATUS_IGNORE);
      }
      if (spins >= kSpinsBeforeYield) sched_yield();
    }
  }
  if (progress) progress->clear();
}

}  // namespace ringtrain
