#include "trainer/allreduce/replicas.h"

namespace ringtrain {

void broadcastFromRankZero(Communicator& comm, torch::nn::Module& module,
                           std::chrono::milliseconds timeout) {
  torch::NoGradGuard noGrad;
  for (auto& p : module.parameters()) {
    auto t = p.detach();
    comm.broadcast(t, 0)->wait(timeout);
  }
  for (auto& b : module.buffers()) {
    auto t = b.detach();
    comm.broadcast(t, 0)->wait(timeout);
  }
}

}  // namespace ringtrain
