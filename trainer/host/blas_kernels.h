// OpenBLAS chooses its kernels by CPU model when it loads. Debian 12's OpenBLAS (0.3.21) does
// not know the newest server CPUs (an Emerald Rapids Xeon, family 6 model 207, for one) and
// falls back to its generic "Prescott" (SSE3) kernels, which made LibTorch's matrix products
// ~3x slower there: fashion_mlp trained at 13,087 samples/s on one core, against 37,466 with
// the AVX-512 kernels the CPU supports (OPENBLAS_CORETYPE=SkylakeX). OPENBLAS_CORETYPE only
// counts when the library loads, which is before main(); so the fix is to set it and start
// the program again.
#pragma once

#include <string>

namespace ringtrain {

struct BlasKernels {
  std::string loaded;  // the kernels the process's OpenBLAS runs ("" when it is not OpenBLAS)
  std::string better;  // kernels this CPU supports that OpenBLAS should run instead, or ""
};

// What the loaded OpenBLAS chose, and "SkylakeX" (AVX-512) or "Haswell" (AVX2 + FMA) when it
// fell back to "Prescott" on a CPU that has them.
BlasKernels blasKernels();

// When blasKernels() names better kernels and the user has not set OPENBLAS_CORETYPE (nor
// RINGTRAIN_BLAS_REEXEC=0): sets OPENBLAS_CORETYPE to them, records the kernels it replaces
// in RINGTRAIN_BLAS_REPLACED, and re-executes this program (/proc/self/exe) with `argv`. Does
// not return then. Returns otherwise, or if the exec fails (the program goes on as it was).
// Call it first thing in main(), before MPI_Init and before any thread starts: under mpirun
// the new image keeps the process and its environment, so it joins the job as usual.
void reexecWithBetterBlasKernels(char** argv);

// "" or the one-line note for the log after such a restart.
std::string blasRestartNote();

}  // namespace ringtrain
