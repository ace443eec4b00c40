#include "trainer/host/stop_signals.h"

#include <atomic>

namespace ringtrain {

namespace {

// A signal handler can only reach process-wide state: these flags are all it touches.
std::atomic<bool> termSeen{false};
std::atomic<bool> usr1Seen{false};
std::atomic<bool> intSeen{false};
struct sigaction previousTerm;
struct sigaction previousUsr1;
struct sigaction previousInt;

extern "C" void recordStopSignal(int signal) {
  if (signal == SIGINT) {
    // A second Ctrl-C: the user does not want to wait for the checkpoint. (sigaction and
    // raise are async-signal-safe.)
    if (intSeen.exchange(true, std::memory_order_relaxed)) {
      struct sigaction fallback = {};
      fallback.sa_handler = SIG_DFL;
      sigemptyset(&fallback.sa_mask);
      sigaction(SIGINT, &fallback, nullptr);
      raise(SIGINT);
    }
    return;
  }
  (signal == SIGTERM ? termSeen : usr1Seen).store(true, std::memory_order_relaxed);
}

}  // namespace

StopSignals::StopSignals() {
  termSeen = false;
  usr1Seen = false;
  intSeen = false;
  struct sigaction action = {};
  action.sa_handler = recordStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &previousTerm);
  sigaction(SIGUSR1, &action, &previousUsr1);
  sigaction(SIGINT, &action, &previousInt);
}

StopSignals::~StopSignals() {
  sigaction(SIGTERM, &previousTerm, nullptr);
  sigaction(SIGUSR1, &previousUsr1, nullptr);
  sigaction(SIGINT, &previousInt, nullptr);
}

bool StopSignals::termReceived() const { return termSeen.load(std::memory_order_relaxed); }

bool StopSignals::usr1Received() const { return usr1Seen.load(std::memory_order_relaxed); }

bool StopSignals::intReceived() const { return intSeen.load(std::memory_order_relaxed); }

}  // namespace ringtrain
