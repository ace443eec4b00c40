// Element-wise sum kernels shared by the ring all-reduce and the user-defined MPI_Op that
// gives MPI_Allreduce bf16/fp16 support. Kept free of torch and MPI types so the same loops
// serve both, and written as plain `a[i] += b[i]` over __restrict pointers so the compiler
// vectorises them: a large all-reduce is bound by these loops and memory bandwidth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringtrain {

// Element types the collectives can sum. 16-bit floats are stored as raw bits and summed in
// float32, rounding back once per addition (the same rounding torch applies).
enum class RingDtype { Float32, Float64, Int32, Int64, BFloat16, Float16 };

std::size_t dtypeSize(RingDtype dtype);
std::string dtypeName(RingDtype dtype);

// inout[i] += in[i] for i in [0, count). The ranges must not overlap.
void reduceSum(void* inout, const void* in, std::int64_t count, RingDtype dtype);

bool isFloating(RingDtype dtype);

// Scaling, for the average: data[i] *= factor with torch's rounding, so the bits are what
// tensor.mul_(factor) gives: the factor is first rounded to the dtype, and 16-bit products are
// computed in float32 and rounded once. Floating dtypes only (throws std::invalid_argument).
void scaleInPlace(void* data, std::int64_t count, RingDtype dtype, double factor);

// inout[i] += in[i] * factor, the product rounded as scaleInPlace rounds it before the
// addition: bitwise scaleInPlace(in) followed by reduceSum, without writing `in`.
void reduceScaledSum(void* inout, const void* in, std::int64_t count, RingDtype dtype,
                     double factor);

}  // namespace ringtrain
