#include "collectives/reduce_kernels.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>
#include <stdexcept>

namespace ringtrain {
namespace {

template <typename T>
void sumLoop(T* __restrict inout, const T* __restrict in, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) inout[i] += in[i];
}

// 16-bit floats are stored as raw bits and computed in float32. bf16 -> fp32 is a shift;
// fp32 -> bf16 rounds to nearest even (c10's rounding, so results match torch's own 16-bit
// arithmetic bit for bit).
float widenBFloat16(std::uint16_t bits) { return c10::detail::f32_from_bits(bits); }
std::uint16_t narrowBFloat16(float value) { return c10::detail::round_to_nearest_even(value); }
float widenFloat16(std::uint16_t bits) { return c10::detail::fp16_ieee_to_fp32_value(bits); }
std::uint16_t narrowFloat16(float value) { return c10::detail::fp16_ieee_from_fp32_value(value); }

template <float (*Widen)(std::uint16_t), std::uint16_t (*Narrow)(float)>
void sum16(std::uint16_t* __restrict inout, const std::uint16_t* __restrict in,
           std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) inout[i] = Narrow(Widen(inout[i]) + Widen(in[i]));
}

// Products are rounded before they are added: this file is compiled as ISO C++ (no
// -ffp-contract=fast) and without FMA, so `a + b * s` is never fused into one rounding.
template <typename T>
void scaleLoop(T* __restrict data, T factor, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) data[i] *= factor;
}

template <typename T>
void scaledSumLoop(T* __restrict inout, const T* __restrict in, T factor, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    const T product = in[i] * factor;
    inout[i] += product;
  }
}

// 16-bit floats: widen, multiply in float32 by the factor rounded to 16 bits, round back.
template <float (*Widen)(std::uint16_t), std::uint16_t (*Narrow)(float)>
void scale16(std::uint16_t* __restrict data, float factor, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) data[i] = Narrow(Widen(data[i]) * factor);
}

template <float (*Widen)(std::uint16_t), std::uint16_t (*Narrow)(float)>
void scaledSum16(std::uint16_t* __restrict inout, const std::uint16_t* __restrict in, float factor,
                 std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint16_t product = Narrow(Widen(in[i]) * factor);
    inout[i] = Narrow(Widen(inout[i]) + Widen(product));
  }
}

template <float (*Widen)(std::uint16_t), std::uint16_t (*Narrow)(float)>
void scaled16(void* out, const void* in, std::int64_t count, float factor, bool accumulate) {
  auto* o = static_cast<std::uint16_t*>(out);
  if (accumulate) {
    scaledSum16<Widen, Narrow>(o, static_cast<const std::uint16_t*>(in), factor, count);
  } else {
    scale16<Widen, Narrow>(o, factor, count);
  }
}

// The factor as torch rounds a Scalar for a 16-bit tensor, widened for the multiplication.
float factor16(RingDtype dtype, double factor) {
  const float f = static_cast<float>(factor);
  return dtype == RingDtype::BFloat16 ? widenBFloat16(narrowBFloat16(f))
                                      : widenFloat16(narrowFloat16(f));
}

// out *= factor (accumulate false; `in` unused) or out += in * factor.
void scaled(void* out, const void* in, std::int64_t count, RingDtype dtype, double factor,
            bool accumulate) {
  switch (dtype) {
    case RingDtype::Float32: {
      auto* o = static_cast<float*>(out);
      if (accumulate) {
        scaledSumLoop(o, static_cast<const float*>(in), static_cast<float>(factor), count);
      } else {
        scaleLoop(o, static_cast<float>(factor), count);
      }
      return;
    }
    case RingDtype::Float64: {
      auto* o = static_cast<double*>(out);
      if (accumulate) {
        scaledSumLoop(o, static_cast<const double*>(in), factor, count);
      } else {
        scaleLoop(o, factor, count);
      }
      return;
    }
    case RingDtype::BFloat16:
      scaled16<widenBFloat16, narrowBFloat16>(out, in, count, factor16(dtype, factor), accumulate);
      return;
    case RingDtype::Float16:
      scaled16<widenFloat16, narrowFloat16>(out, in, count, factor16(dtype, factor), accumulate);
      return;
    case RingDtype::Int32:
    case RingDtype::Int64:
      break;
  }
  throw std::invalid_argument("cannot scale " + dtypeName(dtype) + " values (floating only)");
}

}  // namespace

bool isFloating(RingDtype dtype) { return dtype != RingDtype::Int32 && dtype != RingDtype::Int64; }

void scaleInPlace(void* data, std::int64_t count, RingDtype dtype, double factor) {
  scaled(data, nullptr, count, dtype, factor, /*accumulate=*/false);
}

void reduceScaledSum(void* inout, const void* in, std::int64_t count, RingDtype dtype,
                     double factor) {
  scaled(inout, in, count, dtype, factor, /*accumulate=*/true);
}

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
      sum16<widenBFloat16, narrowBFloat16>(static_cast<std::uint16_t*>(inout),
                                           static_cast<const std::uint16_t*>(in), count);
      break;
    case RingDtype::Float16:
      sum16<widenFloat16, narrowFloat16>(static_cast<std::uint16_t*>(inout),
                                         static_cast<const std::uint16_t*>(in), count);
      break;
  }
}

}  // namespace ringtrain
