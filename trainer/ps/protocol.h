// The wire protocol between parameter-server workers and servers, and the MPI plumbing both
// sides share.
//
// Every message is one MPI_BYTE message on the PS communicator (a duplicate of the world
// communicator, so it never matches anyone else's traffic): a 32-byte header followed by an
// optional payload of float32 elements (a gradient or a partition). Worker -> server messages
// use kTagToServer, server -> worker replies kTagToWorker; MPI keeps messages between one
// pair on one tag in order, which the protocol relies on (an Init or a Push is always
// handled before the Sync or Done its worker sent after it).
//
//   Init  w0 -> s   payload: the initial partition (fresh runs; resumed runs load it)
//   Push  w  -> s   payload: w's gradient for s's partition at header.step; header.value
//                   is the run's total step count (for the learning-rate schedule)
//   Sync  w  -> s   barrier at header.step; flags & kSyncCheckpoint: save the partition
//   Done  w  -> s   w sends nothing more
//   Params s -> w   payload: s's current partition (reply to a Push or a Sync)
//
// Waiting never spins a core: OpenMPI's blocking calls busy-poll, so every wait here tests
// its requests and sleeps between tests with an exponential back-off capped at
// kMaxPollSleep (servers share cores with workers on small machines).
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collectives/mpi_context.h"
#include "trainer/ps/layout.h"

namespace ringtrain::ps {

enum class Kind : int64_t { Init = 1, Push = 2, Sync = 3, Done = 4, Params = 5 };

constexpr int kTagToServer = 7101;
constexpr int kTagToWorker = 7102;

// Header flags.
constexpr int64_t kSyncCheckpoint = 1;  // Sync: save the partition before answering
constexpr int64_t kPushSkip = 2;        // Push: count the step, do not apply (non-finite)

struct Header {
  Kind kind = Kind::Push;
  int64_t step = 0;
  int64_t flags = 0;
  int64_t value = 0;
};
static_assert(sizeof(Header) == 32, "the header is 8 float32 slots on the wire");

const char* kindName(Kind kind);

// One message buffer: header + payload, stored as a float32 tensor so that the payload is
// usable by torch ops without a copy.
class Message {
 public:
  static constexpr int64_t kHeaderFloats = sizeof(Header) / sizeof(float);

  explicit Message(int64_t payloadElements = 0);

  Header header() const;
  void setHeader(const Header& header);
  torch::Tensor payload() { return payload_; }
  int64_t payloadElements() const { return payload_.numel(); }
  void* data() { return buffer_.data_ptr(); }
  int bytes() const { return static_cast<int>(buffer_.numel() * sizeof(float)); }
  int headerBytes() const { return static_cast<int>(sizeof(Header)); }

 private:
  torch::Tensor buffer_;
  torch::Tensor payload_;
};

// Test-and-sleep waiting on MPI requests, with a deadline.
class PoliteWaiter {
 public:
  static constexpr std::chrono::microseconds kMaxPollSleep{200};

  PoliteWaiter(std::chrono::milliseconds timeout, int rank) : timeout_(timeout), rank_(rank) {}

  // Index of a completed request (which becomes MPI_REQUEST_NULL), or MPI_UNDEFINED when
  // every request is MPI_REQUEST_NULL. Throws TimeoutError with `what()` in the message.
  int waitAny(std::vector<MPI_Request>& requests, MPI_Status* status,
              const std::function<std::string()>& what) const;
  void wait(MPI_Request& request, MPI_Status* status,
            const std::function<std::string()>& what) const;
  // Waits for every request (sends that must finish before their buffer is reused).
  void waitAll(std::vector<MPI_Request>& requests, const std::function<std::string()>& what) const;

  std::chrono::milliseconds timeout() const { return timeout_; }
  int rank() const { return rank_; }

 private:
  std::chrono::milliseconds timeout_;
  int rank_;
};

// Non-blocking send / receive of a whole Message on `comm`.
MPI_Request isend(Message& message, int dest, int tag, MPI_Comm comm, int rank);
MPI_Request irecv(Message& message, int source, int tag, MPI_Comm comm, int rank);
// Elements of payload a received message carried (status of its receive).
int64_t receivedPayload(const MPI_Status& status, const Message& message);

// The communicators of a PS job on every rank: `ps` spans the world in world order (the
// protocol's messages), `role` spans only this rank's role (workers: evaluation; servers:
// gradient norms under bsp). Collective over `world`.
struct Comms {
  MpiComm ps;
  MpiComm role;
};
Comms makeComms(MPI_Comm world, const Roles& roles);

// CPU seconds this process used so far (user + system, all threads; getrusage).
double processCpuSeconds();

}  // namespace ringtrain::ps
