// The replicas agree to stop for a scheduler's signal (trainer/host/stop_signals.h) at the
// same step: a rank that got SIGTERM cannot simply leave, or the others would wait for it in
// the next collective until their deadline. After each step every replica posts which
// signals it has seen in a small all-reduce and reads the sum posted at the step before, so
// the all-reduce runs during a step rather than adding a wait to one; every replica reads the
// same sums at the same step and stops there.
#pragma once

#include <chrono>
#include <string>

#include "collectives/communicator.h"

namespace ringtrain {

class StopAgreement {
 public:
  StopAgreement(Communicator& replicas, std::chrono::milliseconds timeout);
  ~StopAgreement();  // waits for the last all-reduce, which still uses flags_
  StopAgreement(const StopAgreement&) = delete;
  StopAgreement& operator=(const StopAgreement&) = delete;

  // After step `step`, with this rank's signals so far. Returns "" to go on, or the signals
  // some replica had seen by the step before ("SIGTERM", "SIGUSR1" or "SIGTERM and SIGUSR1").
  // Collective over the replicas, called after every step.
  std::string afterStep(int64_t step, bool term, bool usr1);

 private:
  Communicator& replicas_;
  std::chrono::milliseconds timeout_;
  torch::Tensor flags_;  // [SIGTERM seen, SIGUSR1 seen], summed over the replicas
  WorkPtr pending_;
};

}  // namespace ringtrain
