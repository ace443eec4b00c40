// The synchronisation fingerprint: what every rank is about to all-reduce or broadcast, in
// order. If two ranks disagree (a rank-dependent model option, a different binary), the
// bucketed all-reduce would pair up unrelated gradients or hang; comparing fingerprints
// first turns that into an error naming the rank and the first differing tensor.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/allreduce/grad_sync.h"

namespace ringtrain {

// One line per synchronised tensor, in the order of synchronisation: the parameters bucket
// by bucket in fill order, e.g. "fc3.bias [10] Float (bucket 0)", then the buffers
// (broadcast once at start), e.g. "bn.running_mean [64] Float (buffer)".
std::vector<std::string> syncFingerprint(const torch::nn::Module& module,
                                         const std::vector<BucketLayout>& layout);

// One line of a fingerprint: "fc3.bias [10] Float (where)".
std::string fingerprintLine(const std::string& name, const torch::Tensor& t,
                            const std::string& where);

// Where two fingerprints first differ: the index of the first differing line (the shorter
// length if one is a prefix of the other), or -1 when they are equal.
int64_t firstDifference(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// Where the ranks' lists of lines first differ: the lowest rank that differs from rank 0,
// the index of the first differing line, and both ranks' text of it (a rank that has no such
// line: "nothing (it has only N <items>)"; a line is cut at 240 characters).
struct LineMismatch {
  int rank;
  int64_t line;
  std::string reference;  // rank 0's
  std::string other;      // rank `rank`'s
};

// Collective: compares `lines` across all ranks with one small all-gather when they match
// (two more when they do not). Every rank gets the same answer.
std::optional<LineMismatch> findLineMismatch(const std::vector<std::string>& lines,
                                             const std::string& items, Communicator& comm,
                                             std::chrono::milliseconds timeout);

// Collective: compares `fingerprint` across all ranks (one small all-gather when they match).
// On a mismatch every rank throws the same TrainingError naming the lowest rank that
// differs from rank 0 and the first differing line on both. `when` says when the check
// ran, e.g. "start-up" or "step 1000".
void checkFingerprintsMatch(const std::vector<std::string>& fingerprint, Communicator& comm,
                            std::chrono::milliseconds timeout, const std::string& when);

}  // namespace ringtrain
