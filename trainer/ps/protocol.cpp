#include "trainer/ps/protocol.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace ringtrain::ps {

namespace {

using Clock = std::chrono::steady_clock;

// Polls before the first sleep: a reply that is already on its way costs no sleep latency.
constexpr int kSpinPolls = 32;
constexpr std::chrono::microseconds kFirstSleep{10};

std::string seconds(std::chrono::milliseconds ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return text;
}

// Owns the result of MPI_Comm_split until MpiComm has duplicated it.
class SplitComm {
 public:
  SplitComm(MPI_Comm parent, int color, int key, int rank) {
    checkMpi(MPI_Comm_split(parent, color, key, &comm_), "MPI_Comm_split (parameter server)", rank);
  }
  ~SplitComm() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  SplitComm(const SplitComm&) = delete;
  SplitComm& operator=(const SplitComm&) = delete;
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace

const char* kindName(Kind kind) {
  switch (kind) {
    case Kind::Init:
      return "init";
    case Kind::Push:
      return "push";
    case Kind::Sync:
      return "sync";
    case Kind::Done:
      return "done";
    case Kind::Params:
      return "params";
  }
  return "unknown";
}

Message::Message(int64_t payloadElements)
    : buffer_(torch::zeros({kHeaderFloats + payloadElements}, torch::kFloat32)),
      payload_(buffer_.narrow(0, kHeaderFloats, payloadElements)) {}

Header Message::header() const {
  Header header;
  std::memcpy(&header, buffer_.data_ptr(), sizeof header);
  return header;
}

void Message::setHeader(const Header& header) {
  std::memcpy(buffer_.data_ptr(), &header, sizeof header);
}

int PoliteWaiter::waitAny(std::vector<MPI_Request>& requests, MPI_Status* status,
                          const std::function<std::string()>& what) const {
  const auto deadline = Clock::now() + timeout_;
  auto sleep = kFirstSleep;
  for (int poll = 0;; ++poll) {
    int index = MPI_UNDEFINED;
    int done = 0;
    checkMpi(MPI_Testany(static_cast<int>(requests.size()), requests.data(), &index, &done,
                         status ? status : MPI_STATUS_IGNORE),
             "MPI_Testany (parameter server)", rank_);
    if (done) return index;
    if (poll < kSpinPolls) {
      std::this_thread::yield();
      continue;
    }
    if (Clock::now() > deadline) {
      throw TimeoutError(
          "rank " + std::to_string(rank_) + " waited " + seconds(timeout_) + " for " + what(),
          "a peer rank is stuck or died; check its log, or raise "
          "distributed.timeout_s if it is merely slow",
          rank_);
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, kMaxPollSleep);
  }
}

void PoliteWaiter::wait(MPI_Request& request, MPI_Status* status,
                        const std::function<std::string()>& what) const {
  std::vector<MPI_Request> one{request};
  waitAny(one, status, what);
  request = one[0];
}

void PoliteWaiter::waitAll(std::vector<MPI_Request>& requests,
                           const std::function<std::string()>& what) const {
  while (waitAny(requests, nullptr, what) != MPI_UNDEFINED) {
  }
}

MPI_Request isend(Message& message, int dest, int tag, MPI_Comm comm, int rank) {
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Isend(message.data(), message.bytes(), MPI_BYTE, dest, tag, comm, &request),
           "MPI_Isend (parameter server)", rank);
  return request;
}

MPI_Request irecv(Message& message, int source, int tag, MPI_Comm comm, int rank) {
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Irecv(message.data(), message.bytes(), MPI_BYTE, source, tag, comm, &request),
           "MPI_Irecv (parameter server)", rank);
  return request;
}

int64_t receivedPayload(const MPI_Status& status, const Message& message) {
  int bytes = 0;
  MPI_Get_count(&status, MPI_BYTE, &bytes);
  return std::max(0, bytes - message.headerBytes()) / static_cast<int>(sizeof(float));
}

Comms makeComms(MPI_Comm world, const Roles& roles) {
  int rank = -1;
  MPI_Comm_rank(world, &rank);
  const SplitComm split(world, roles.isServer(rank) ? 1 : 0, rank, rank);
  return Comms{MpiComm(world), MpiComm(split.get())};
}

double processCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto toSeconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return toSeconds(usage.ru_utime) + toSeconds(usage.ru_stime);
}

}  // namespace ringtrain::ps
