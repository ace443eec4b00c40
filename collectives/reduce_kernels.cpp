#include "collectives/reduce_kernels.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

namespace ringtrain {
namespace {

template <typename T>
void sumLoop(T* __restrict inout, const T* __restrict in, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) inout[i] += in[i];
}

// bf16 -> fp32 is a shift; fp32 -> bf16 rounds to nearest even (c10's rounding, so results
// match torch's own bf16 addition bit for bit).
void sumBFloat16(std::uint16_t* __restrict inout, const std::uint16_t* __restrict in,
                 std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    const float sum = c10::detail::f32_from_bits(inout[i]) + c10::detail::f32_from_bits(in[i]);
    inout[i] = c10::detail::round_to_nearest_even(sum);
  }
}

void sumFloat16(std::uint16_t* __restrict inout, const std::uint16_t* __restrict in,
                std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    const float sum = c10::detail::fp16_ieee_to_fp32_value(inout[i]) +
                      c10::detail::fp16_ieee_to_fp32_value(in[i]);
    inout[i] = c10::detail::fp16_ieee_from_fp32_value(sum);
  }
}

}  // namespace

std::size_t dtypeSize(RingDtype dtype) {
  switch (dtype) {
    case RingDtype::Float32:
    case RingDtype::Int32:
      return 4;
    case RingDtype::Float64:
    case RingDtype::Int64:
      return 8;
    case RingDtype::BFloat16:
    case RingDtype::Float16:
      return 2;
  }
  return 0;
}

std::string dtypeName(RingDtype dtype) {
  switch (dtype) {
    case RingDtype::Float32:
      return "float32";
    case RingDtype::Float64:
      return "float64";
    case RingDtype::Int32:
      return "int32";
    case RingDtype::Int64:
      return "int64";
    case RingDtype::BFloat16:
      return "bfloat16";
    case RingDtype::Float16:
      return "float16";
  }
  return "unknown";
}

void reduceSum(void* inout, const void* in, std::int64_t count, RingDtype dtype) {
  switch (dtype) {
    case RingDtype::Float32:
      sumLoop(static_cast<float*>(inout), static_cast<const float*>(in), count);
      break;
    case RingDtype::Float64:
      sumLoop(static_cast<double*>(inout), static_cast<const double*>(in), count);
      break;
    // Integers are summed as unsigned so overflow wraps (as torch does) instead of being UB;
    // signed and unsigned variants of a type may alias.
    case RingDtype::Int32:
      sumLoop(static_cast<std::uint32_t*>(inout), static_cast<const std::uint32_t*>(in), count);
      break;
    case RingDtype::Int64:
      sumLoop(static_cast<std::uint64_t*>(inout), static_cast<const std::uint64_t*>(in), count);
      break;
    case RingDtype::BFloat16:
      sumBFloat16(static_cast<std::uint16_t*>(inout), static_cast<const std::uint16_t*>(in), count);
      break;
    case RingDtype::Float16:
      sumFloat16(static_cast<std::uint16_t*>(inout), static_cast<const std::uint16_t*>(in), count);
      break;
  }
}

}  // namespace ringtrain
