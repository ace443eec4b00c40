// Process-wide CPU settings of a training rank: intra-op threads, and keeping the memory
// LibTorch frees inside the process for the next step to reuse.
#pragma once

#include <cstdint>

namespace ringtrain {

// Sets LibTorch's intra-op threads and, when OpenBLAS is the BLAS, OpenBLAS's own pool to
// `requested`, or, when it is 0, to the cores of this node divided by the ranks on it (one
// rank per core by default: more threads than cores only thrash). Returns the count set.
int64_t setIntraOpThreads(int64_t requested, int64_t worldSize);

// Why retain freed memory: glibc's malloc hands large blocks (activations, im2col buffers,
// the temporaries of a step) back to the kernel when they are freed: blocks above its mmap
// threshold are unmapped, and the free top of the heap is trimmed. The next step then
// page-faults the same memory back in, zero-filled by the kernel: ~3,000 faults (12 MiB) per
// step for fashion_cnn at batch 64, which made its forward+backward 15-30% slower and most of
// its step-to-step jitter on the VM measured in bench/RESULTS.md. Jitter costs twice in
// data-parallel training, where every step waits for the slowest rank. A training process
// reaches the same peak every step, so keeping it costs no more memory than the first step
// needed (PyTorch's CUDA caching allocator keeps GPU memory for the same reason).
enum class HostMemoryRetention {
  Applied,            // malloc keeps freed memory from now on
  LeftToEnvironment,  // MALLOC_*_ or GLIBC_TUNABLES malloc settings are set: they win
  Unsupported,        // not glibc's malloc (e.g. a sanitizer's)
};

// Sets glibc malloc's mmap threshold to its maximum (32 MiB), disables heap trimming and
// grows the heap in 64 MiB steps. Process-wide and idempotent; train.retain_host_memory
// (default true) makes the trainers call it.
HostMemoryRetention retainFreedHostMemory();

}  // namespace ringtrain
