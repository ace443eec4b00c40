#include "trainer/sync/stop_agreement.h"

namespace ringtrain {

StopAgreement::StopAgreement(Communicator& replicas, std::chrono::milliseconds timeout)
    : replicas_(replicas), timeout_(timeout) {}

StopAgreement::~StopAgreement() {
  if (!pending_) return;
  try {
    pending_->wait(timeout_);
  } catch (const std::exception&) {
    // The run is already ending with an error of its own.
  }
}

std::string StopAgreement::afterStep(int64_t step, bool term, bool usr1) {
  if (pending_) {
    pending_->wait(timeout_);
    pending_.reset();
    const bool anyTerm = flags_[0].item<double>() > 0;
    const bool anyUsr1 = flags_[1].item<double>() > 0;
    if (anyTerm || anyUsr1) {
      return anyTerm && anyUsr1 ? "SIGTERM and SIGUSR1" : anyTerm ? "SIGTERM" : "SIGUSR1";
    }
  }
  flags_ = torch::tensor({term ? 1.0 : 0.0, usr1 ? 1.0 : 0.0}, torch::kFloat64);
  pending_ = replicas_.allreduce(flags_, "stop signals, step " + std::to_string(step));
  return "";
}

}  // namespace ringtrain
