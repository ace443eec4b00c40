#include "trainer/host/stop_signals.h"

#include <atomic>

namespace ringtrain {

namespace {

// A signal handler can only reach process-wide state: these two flags are all it touches.
std::atomic<bool> termSeen{false};
std::atomic<bool> usr1Seen{false};
struct sigaction previousTerm;
struct sigaction previousUsr1;

extern "C" void recordStopSignal(int signal) {
  (signal == SIGTERM ? termSeen : usr1Seen).store(true, std::memory_order_relaxed);
}

}  // namespace

StopSignals::StopSignals() {
  termSeen = false;
  usr1Seen = false;
  struct sigaction action = {};
  action.sa_handler = recordStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &previousTerm);
  sigaction(SIGUSR1, &action, &previousUsr1);
}

StopSignals::~StopSignals() {
  sigaction(SIGTERM, &previousTerm, nullptr);
  sigaction(SIGUSR1, &previousUsr1, nullptr);
}

bool StopSignals::termReceived() const { return termSeen.load(std::memory_order_relaxed); }

bool StopSignals::usr1Received() const { return usr1Seen.load(std::memory_order_relaxed); }

}  // namespace ringtrain
