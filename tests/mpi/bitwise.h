// Bitwise comparison of tensors for the MPI tests: the same shape, dtype and bytes (NaNs
// compare by their bits, -0.0 differs from 0.0), the strictest equivalence there is.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstring>

namespace ringtrain::mpitest {

// The deadline of the tests' collectives.
inline constexpr auto kTimeout = std::chrono::milliseconds(60000);

inline bool bitwiseEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  auto x = a.contiguous();
  auto y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

}  // namespace ringtrain::mpitest
