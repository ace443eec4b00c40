// Bitwise comparison of tensors for the MPI tests: the same shape, dtype and bytes (NaNs
// compare by their bits, -0.0 differs from 0.0), the strictest equivalence there is.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ringtrain::mpitest {

// The deadline of the tests' collectives.
inline constexpr auto kTimeout = std::chrono::milliseconds(60000);

inline bool bitwiseEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  auto x = a.contiguous();
  auto y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

// Sets RINGTRAIN_RANKS_PER_NODE for one scope (on every rank alike): the communicators made
// inside it see nodes of that many ranks (the hierarchical path on one machine).
class RanksPerNode {
 public:
  explicit RanksPerNode(const std::string& value) {
    setenv("RINGTRAIN_RANKS_PER_NODE", value.c_str(), 1);
  }
  ~RanksPerNode() { unsetenv("RINGTRAIN_RANKS_PER_NODE"); }
  RanksPerNode(const RanksPerNode&) = delete;
  RanksPerNode& operator=(const RanksPerNode&) = delete;
};

}  // namespace ringtrain::mpitest
