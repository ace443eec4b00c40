// Ring all-reduce: reduce-scatter then all-gather around the ring 0 -> 1 -> ... -> n-1 -> 0.
//
// Terms:
//   chunk   - the buffer is cut into n chunks (chunk c = elements [off(c), off(c)+len(c)),
//             len = count/n plus one for the first count%n chunks). In each step a rank
//             receives exactly one chunk from its left neighbour and sends one to its right.
//             After the reduce-scatter rank r owns the fully reduced chunk (r+1) % n.
//   segment - a chunk travels as segments of at most segmentBytes: the unit that is in flight
//             at once. Segment j of a chunk is the same slice on every rank, so message sizes
//             always match.
//
// Step s of 2(n-1) receives chunk X(s) = (r-s-1) mod n and sends X(s-1) (X(-1) = r, the
// rank's own chunk): in reduce-scatter steps (s < n-1) the received segment lands in a
// scratch slot and is added into the buffer; in all-gather steps it is received straight into
// the buffer. Segment j of step s+1 is sent as soon as segment j of step s is done, so steps
// overlap rather than meeting at a barrier. Receives are posted `slots` segments ahead, before
// the current segment is added (with >= 2 slots, double buffering), so a neighbour's send is
// matched at once and the next segment is already arriving in a cache-resident slot while
// this one is summed. Each rank sends 2(n-1)/n of the buffer.
//
// Phases: a reduce-scatter alone runs steps [0, n-1) and leaves rank r with chunk (r+1) % n
// reduced; an all-gather alone runs steps [n-1, 2(n-1)), starting from that chunk. Each sends
// (n-1)/n of the buffer.
//
// All messages between a pair use one tag: MPI matches them in posting order, and both ends
// enumerate (step, segment) in the same order, skipping empty chunks the same way.
#include "collectives/ring_allreduce.h"

#include <algorithm>

#include "collectives/mpi_context.h"
#include "core/error.h"

namespace ringtrain {
namespace {

constexpr int kTag = 0x5249;  // "RI"

// The chunk/segment geometry of one call.
struct Layout {
  std::int64_t count;
  int n;
  int rank;
  std::int64_t segElems;
  std::int64_t maxSegs;  // segments in the largest chunk (chunk 0)

  std::int64_t chunkLen(int c) const { return ringChunk(count, n, c).length; }
  std::int64_t chunkOff(int c) const { return ringChunk(count, n, c).offset; }
  std::int64_t segs(int c) const { return (chunkLen(c) + segElems - 1) / segElems; }
  // Chunk received in step s; chunkAt(s - 1) is the one sent in step s.
  int chunkAt(int s) const { return ((rank - s - 1) % n + n) % n; }
  std::int64_t segOff(int c, std::int64_t j) const { return chunkOff(c) + j * segElems; }
  std::int64_t segLen(int c, std::int64_t j) const {
    return std::min(segElems, chunkLen(c) - j * segElems);
  }
};

struct RecvUnit {
  int step;
  std::int64_t seg;
};

}  // namespace

void RingProgress::set(Waiting what, int peer, int step, int totalSteps) {
  peer_.store(peer, std::memory_order_relaxed);
  step_.store(step, std::memory_order_relaxed);
  totalSteps_.store(totalSteps, std::memory_order_relaxed);
  what_.store(static_cast<int>(what), std::memory_order_relaxed);
}

void RingProgress::clear() { what_.store(0, std::memory_order_relaxed); }

std::string RingProgress::describe(const std::vector<std::string>& hostOfRank) const {
  const auto what = static_cast<Waiting>(what_.load(std::memory_order_relaxed));
  if (what == Waiting::Nothing) return "not blocked in the ring";
  const int step = step_.load(std::memory_order_relaxed);
  const int total = totalSteps_.load(std::memory_order_relaxed);
  const char* phase = step < total / 2 ? "reduce-scatter" : "all-gather";
  const int peerRank = peer_.load(std::memory_order_relaxed);
  std::string peer = std::to_string(peerRank);
  if (peerRank >= 0 && static_cast<std::size_t>(peerRank) < hostOfRank.size()) {
    peer += " on host " + hostOfRank[static_cast<std::size_t>(peerRank)];
  }
  std::string line = what == Waiting::Recv ? "waiting for data from rank " + peer
                                           : "waiting for rank " + peer + " to take our data";
  line +=
      " (step " + std::to_string(step + 1) + " of " + std::to_string(total) + ", " + phase + ")";
  return line;
}

void RingProgress::addWait(Waiting what, int peer, double seconds) {
  const auto ns = static_cast<long long>(seconds * 1e9);
  if (what == Waiting::Send) {
    sendPeer_.store(peer, std::memory_order_relaxed);
    sendWaitNs_.fetch_add(ns, std::memory_order_relaxed);
  } else if (what == Waiting::Recv) {
    recvPeer_.store(peer, std::memory_order_relaxed);
    recvWaitNs_.fetch_add(ns, std::memory_order_relaxed);
  }
}

LinkWaits RingProgress::waits() const {
  LinkWaits w;
  w.sendPeer = sendPeer_.load(std::memory_order_relaxed);
  w.recvPeer = recvPeer_.load(std::memory_order_relaxed);
  w.sendWait = 1e-9 * static_cast<double>(sendWaitNs_.load(std::memory_order_relaxed));
  w.recvWait = 1e-9 * static_cast<double>(recvWaitNs_.load(std::memory_order_relaxed));
  return w;
}

unsigned char* RingWorkspace::scratch(std::size_t bytes) {
  if (scratch_.size() < bytes) scratch_.resize(bytes);
  return scratch_.data();
}

void ringAllreduce(void* data, std::int64_t count, RingDtype dtype, MPI_Comm comm,
                   const RingOptions& options) {
  int rank = 0;
  int n = 1;
  checkMpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(comm, &n), "MPI_Comm_size", rank);
  if (count < 0) throw CommError("ringAllreduce: negative count", {}, rank);
  if (n == 1 || count == 0) return;

  const auto elem = static_cast<std::int64_t>(dtypeSize(dtype));
  const std::int64_t segElems = std::max<std::int64_t>(1, options.segmentBytes / elem);
  Layout layout{count, n, rank, segElems, 0};
  layout.maxSegs = layout.segs(0);
  const int steps = 2 * (n - 1);  // of the whole all-reduce: step numbers and progress
  const int firstStep = options.phases == RingPhases::AllGather ? n - 1 : 0;
  const int endStep = options.phases == RingPhases::ReduceScatter ? n - 1 : steps;
  const int left = (rank - 1 + n) % n;
  const int right = (rank + 1) % n;
  auto nameOf = [&](int r) {
    return options.rankNames ? (*options.rankNames)[static_cast<std::size_t>(r)] : r;
  };
  const int leftName = nameOf(left);
  const int rightName = nameOf(right);
  const int self = nameOf(rank);
  const int slots = std::max(2, options.slots);
  auto* bytes = static_cast<unsigned char*>(data);

  RingWorkspace localWorkspace;
  RingWorkspace& ws = options.workspace ? *options.workspace : localWorkspace;
  unsigned char* scratch = ws.scratch(static_cast<std::size_t>(slots * segElems * elem));
  auto& sendReq = ws.sendRequests();
  sendReq.assign(static_cast<std::size_t>(steps * layout.maxSegs), MPI_REQUEST_NULL);
  auto& recvReq = ws.recvRequests();
  recvReq.assign(static_cast<std::size_t>(slots), MPI_REQUEST_NULL);
  auto& sendPosted = ws.sendPosted();
  sendPosted.assign(sendReq.size(), 0);
  RingProgress* progress = options.progress;
  // Blocks in MPI_Wait(all), marking what for (timeouts read it) and adding the time blocked
  // to the totals that name a slow link.
  auto waitFor = [&](RingProgress::Waiting what, int step, int count, MPI_Request* requests,
                     const char* call) {
    const int peer = what == RingProgress::Waiting::Send ? rightName : leftName;
    if (!progress) {
      checkMpi(MPI_Waitall(count, requests, MPI_STATUSES_IGNORE), call, self);
      return;
    }
    progress->set(what, peer, step, steps);
    const double start = MPI_Wtime();
    checkMpi(MPI_Waitall(count, requests, MPI_STATUSES_IGNORE), call, self);
    progress->addWait(what, peer, MPI_Wtime() - start);
  };

  // Receives in the order both ends enumerate them, as step * maxSegs + segment.
  auto& units = ws.units();
  units.clear();
  for (int s = firstStep; s < endStep; ++s) {
    const std::int64_t segs = layout.segs(layout.chunkAt(s));
    for (std::int64_t j = 0; j < segs; ++j) units.push_back(s * layout.maxSegs + j);
  }
  auto unitAt = [&](std::size_t k) {
    return RecvUnit{static_cast<int>(units[k] / layout.maxSegs), units[k] % layout.maxSegs};
  };

  auto segPtr = [&](int chunk, std::int64_t j) { return bytes + layout.segOff(chunk, j) * elem; };
  auto segBytes = [&](int chunk, std::int64_t j) {
    return static_cast<int>(layout.segLen(chunk, j) * elem);
  };
  auto postSend = [&](int s, std::int64_t j) {
    const int c = layout.chunkAt(s - 1);
    const auto i = static_cast<std::size_t>(s * layout.maxSegs + j);
    checkMpi(MPI_Isend(segPtr(c, j), segBytes(c, j), MPI_BYTE, right, kTag, comm, &sendReq[i]),
             "MPI_Isend (ring)", self);
    sendPosted[i] = 1;
  };
  // An all-gather receive overwrites a segment this rank sent n-1 steps earlier; that send
  // must be finished first. Reduce-scatter receives go to scratch and need a free slot.
  auto sendIndex = [&](const RecvUnit& u) {
    return static_cast<std::size_t>((u.step - n + 1) * layout.maxSegs + u.seg);
  };
  auto blockingSendDone = [&](const RecvUnit& u) {
    if (u.step < n - 1 || u.step - n + 1 < firstStep) return true;
    const std::size_t i = sendIndex(u);
    if (!sendPosted[i]) return false;  // with few segments, look-ahead can get here first
    int finished = 0;
    checkMpi(MPI_Test(&sendReq[i], &finished, MPI_STATUS_IGNORE), "MPI_Test (ring)", self);
    return finished != 0;
  };
  auto postRecv = [&](std::size_t k) {
    const RecvUnit u = unitAt(k);
    const int c = layout.chunkAt(u.step);
    unsigned char* dst =
        u.step < n - 1 ? scratch + (k % slots) * segElems * elem : segPtr(c, u.seg);
    checkMpi(MPI_Irecv(dst, segBytes(c, u.seg), MPI_BYTE, left, kTag, comm, &recvReq[k % slots]),
             "MPI_Irecv (ring)", self);
  };

  // The first step sends the rank's own data (an all-gather's: its reduced chunk), ready now.
  for (std::int64_t j = 0; j < layout.segs(layout.chunkAt(firstStep - 1)); ++j) {
    postSend(firstStep, j);
  }

  std::size_t posted = 0;
  auto postAhead = [&](std::size_t done) {
    while (posted < units.size() && posted < done + static_cast<std::size_t>(slots)) {
      if (!blockingSendDone(unitAt(posted))) return;  // retried after the next segment
      postRecv(posted++);
    }
  };

  postAhead(0);
  for (std::size_t k = 0; k < units.size(); ++k) {
    const RecvUnit u = unitAt(k);
    if (posted == k) {
      // Its segment's earlier send is still in flight (it was posted: unit (s-n, j) came
      // first): nothing else to do but wait for it.
      waitFor(RingProgress::Waiting::Send, u.step, 1, &sendReq[sendIndex(u)],
              "MPI_Wait (ring send)");
      postRecv(posted++);
    }
    waitFor(RingProgress::Waiting::Recv, u.step, 1, &recvReq[k % slots], "MPI_Wait (ring recv)");
    const int c = layout.chunkAt(u.step);
    if (u.step < n - 1) {
      // Post the next receives first so they can match while this segment is added.
      postAhead(k);
      reduceSum(segPtr(c, u.seg), scratch + (k % slots) * segElems * elem, layout.segLen(c, u.seg),
                dtype);
    }
    if (u.step + 1 < endStep) postSend(u.step + 1, u.seg);
    postAhead(k + 1);
  }

  waitFor(RingProgress::Waiting::Send, endStep - 1, static_cast<int>(sendReq.size()),
          sendReq.data(), "MPI_Waitall (ring sends)");
  if (progress) progress->clear();
}

}  // namespace ringtrain
