// Making the replicas start equal: every rank's parameters and buffers become rank 0's.
// The Trainer does it at start-up, DataParallel when it wraps a user's modules (as DDP's
// constructor does), so that ranks that seeded differently still train one model.
#pragma once

#include <torch/torch.h>

#include <chrono>

#include "collectives/communicator.h"

namespace ringtrain {

// Collective: broadcasts from rank 0 every parameter, then every buffer, of `module`, in
// registration order and in place. Every rank must hold the same structure (compare
// syncFingerprint first: a mismatch would pair unrelated tensors or hang).
void broadcastFromRankZero(Communicator& comm, torch::nn::Module& module,
                           std::chrono::milliseconds timeout);

}  // namespace ringtrain
