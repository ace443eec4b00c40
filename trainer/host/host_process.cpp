#include "trainer/host/host_process.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ringtrain {

namespace {

// torch::set_num_threads reaches OpenMP but not OpenBLAS, whose pthread build (Debian's
// preferred libblas.so.3) keeps its own pool of one thread per core in every process: with one
// rank per core the ranks then fight over the cores (a 64x784x256 product took 10x longer on 2
// cores, see bench/RESULTS.md). Match it to the intra-op threads when OpenBLAS is the BLAS.
void setBlasThreads(int threads) {
  using SetThreads = void (*)(int);
  if (void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) {
    reinterpret_cast<SetThreads>(symbol)(threads);
  }
}

// The user's own malloc settings, from the environment, take precedence over ours.
bool mallocTunedByEnvironment() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                           "MALLOC_MMAP_MAX_"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr;
}

}  // namespace

int64_t setIntraOpThreads(int64_t requested, int64_t worldSize) {
  int64_t threads = requested;
  if (threads <= 0) {
    const char* localSize = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int64_t ranksHere = localSize ? std::max(1, std::atoi(localSize)) : worldSize;
    const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
    threads = std::max<int64_t>(1, cores / std::max<int64_t>(1, ranksHere));
  }
  torch::set_num_threads(static_cast<int>(threads));
  setBlasThreads(static_cast<int>(threads));
  return threads;
}

HostMemoryRetention retainFreedHostMemory() {
  if (mallocTunedByEnvironment()) return HostMemoryRetention::LeftToEnvironment;
#if defined(__GLIBC__)
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit (half its heap size); larger
  // blocks are still mapped and unmapped each time, but a step's temporaries are smaller.
  // mallopt returns 0 where malloc is not glibc's (AddressSanitizer intercepts it).
  const bool applied = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 &&
                       mallopt(M_TRIM_THRESHOLD, -1) == 1 &&  // -1: never trim
                       mallopt(M_TOP_PAD, 64 << 20) == 1;
  return applied ? HostMemoryRetention::Applied : HostMemoryRetention::Unsupported;
#else
  return HostMemoryRetention::Unsupported;
#endif
}

}  // namespace ringtrain
