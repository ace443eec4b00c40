// The replicas agree to stop for a scheduler's signal (trainer/host/stop_signals.h) at the
// same step: a rank that got SIGTERM cannot simply leave, or the others would wait for it in
// the next collective until their deadline.
//
// Every few steps (a "check step") each replica posts, in a small asynchronous all-reduce,
// which signals it has seen and how long its steps since the last post took; at the next
// check step it reads the sums. Every replica reads the same sums at the same step, so all
// stop there. The sums also set the number of steps to the next check, the same on every
// replica, so that checks come about every kCheckPeriod whatever a step costs: one tiny
// collective per step measurably slowed small models (bench/RESULTS.md, fashion_mlp), while
// a scheduler's grace period (SLURM's KillWait, 30 s by default) is far longer than a period.
#pragma once

#include <chrono>
#include <string>

#include "collectives/communicator.h"

namespace ringtrain {

// The stop signals one rank has seen so far (trainer/host/stop_signals.h).
struct SeenSignals {
  bool term = false;
  bool usr1 = false;
  bool interrupt = false;  // SIGINT
};

class StopAgreement {
 public:
  // About this long between check steps, once the step time is known.
  static constexpr double kCheckPeriodSeconds = 0.2;
  static constexpr int64_t kMaxStepsBetweenChecks = 1024;

  StopAgreement(Communicator& replicas, std::chrono::milliseconds timeout);

  // After every step, with this rank's signals so far. Returns "" to go on, or the signals
  // some replica had seen by the check step before, joined by " and " in the order SIGTERM,
  // SIGUSR1, SIGINT ("SIGTERM", "SIGTERM and SIGUSR1", ...). Collective over the replicas:
  // all must call it after the same steps.
  std::string afterStep(int64_t step, const SeenSignals& seen);

  // Steps from one check to the next; the same on every replica.
  int64_t stepsBetweenChecks() const { return stepsBetweenChecks_; }

 private:
  using Clock = std::chrono::steady_clock;

  Communicator& replicas_;
  std::chrono::milliseconds timeout_;
  // [SIGTERM, SIGUSR1, SIGINT seen, microseconds since the last post], summed over the replicas.
  // Whole numbers in float64, so the sums are exact in any summation order.
  torch::Tensor flags_;
  WorkPtr pending_;  // holds its own reference to flags_, so it may outlive this object
  int64_t stepsBetweenChecks_ = 1;
  int64_t stepsSincePost_ = 0;
  Clock::time_point lastPost_ = Clock::now();
};

}  // namespace ringtrain
