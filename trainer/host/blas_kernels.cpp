#include "trainer/host/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ringtrain {
namespace {

bool envSet(const char* name) {
  const char* value = std::getenv(name);
  return value && *value;
}

std::string cpuKernelsFor() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

}  // namespace

BlasKernels blasKernels() {
  BlasKernels kernels;
  // OpenBLAS's own query; absent from other BLAS libraries (the reference BLAS, MKL).
  using CoreName = char* (*)();
  const auto coreName = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!coreName) return kernels;
  const char* name = coreName();
  kernels.loaded = name ? name : "";
  if (kernels.loaded == "Prescott") kernels.better = cpuKernelsFor();
  return kernels;
}

void reexecWithBetterBlasKernels(char** argv) {
  if (envSet("OPENBLAS_CORETYPE")) return;  // the user's choice, or an earlier restart's
  const char* allowed = std::getenv("RINGTRAIN_BLAS_REEXEC");
  if (allowed && std::strcmp(allowed, "0") == 0) return;
  const BlasKernels kernels = blasKernels();
  if (kernels.better.empty()) return;
  setenv("OPENBLAS_CORETYPE", kernels.better.c_str(), 1);
  setenv("RINGTRAIN_BLAS_REPLACED", kernels.loaded.c_str(), 1);
  execv("/proc/self/exe", argv);
  // Only reached if the exec failed: carry on with the kernels already loaded.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("RINGTRAIN_BLAS_REPLACED");
}

std::string blasRestartNote() {
  const char* replaced = std::getenv("RINGTRAIN_BLAS_REPLACED");
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (!replaced || !*replaced || !chosen || !*chosen) return "";
  return std::string("note: OpenBLAS did not recognise this CPU and loaded its generic ") +
         replaced + " kernels; ringtrain restarted itself with OPENBLAS_CORETYPE=" + chosen +
         ", which this CPU supports (set OPENBLAS_CORETYPE yourself to choose, or "
         "RINGTRAIN_BLAS_REEXEC=0 to keep OpenBLAS's choice)";
}

}  // namespace ringtrain
