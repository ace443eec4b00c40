#include "trainer/sync/stop_agreement.h"

#include <algorithm>
#include <cmath>

namespace ringtrain {

StopAgreement::StopAgreement(Communicator& replicas, std::chrono::milliseconds timeout)
    : replicas_(replicas), timeout_(timeout) {}

std::string StopAgreement::afterStep(int64_t step, const SeenSignals& seen) {
  if (++stepsSincePost_ < stepsBetweenChecks_) return "";
  if (pending_) {
    pending_->wait(timeout_);
    pending_.reset();
    std::string names;
    const char* const kNames[] = {"SIGTERM", "SIGUSR1", "SIGINT"};
    for (int i = 0; i < 3; ++i) {
      if (flags_[i].item<double>() > 0)
        names += (names.empty() ? "" : " and ") + std::string(kNames[i]);
    }
    if (!names.empty()) return names;
    // The replicas' mean seconds per step over the last period sets the next one. Growing
    // at most 4x per check keeps a slow first step (warm-up) from mattering much.
    const double secondsPerStep =
        flags_[3].item<double>() * 1e-6 / replicas_.size() / static_cast<double>(stepsSincePost_);
    const double wanted = kCheckPeriodSeconds / std::max(secondsPerStep, 1e-9);
    stepsBetweenChecks_ = std::clamp<int64_t>(
        static_cast<int64_t>(wanted), 1, std::min(kMaxStepsBetweenChecks, 4 * stepsBetweenChecks_));
  }
  const auto now = Clock::now();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now - lastPost_).count();
  lastPost_ = now;
  stepsSincePost_ = 0;
  flags_ = torch::tensor({seen.term ? 1.0 : 0.0, seen.usr1 ? 1.0 : 0.0, seen.interrupt ? 1.0 : 0.0,
                          static_cast<double>(micros)},
                         torch::kFloat64);
  pending_ = replicas_.allreduce(flags_, "stop signals, step " + std::to_string(step));
  return "";
}

}  // namespace ringtrain
