#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "trainer/host/host_process.h"

namespace ringtrain {
namespace {

int64_t minorPageFaultsOfThisThread() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// Page faults of a small conv net's training steps (batch 64, 28x28) after `warmup` steps: its
// activations and gradients are freed at the end of every step and allocated again in the next.
// Retained, the heap still grows in a few early steps (by one 6 MiB activation at step 2 and
// again at step 5 here), then no more.
int64_t pageFaultsOfSteps(int warmup, int measured) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(1, 32, 3).padding(1));
  torch::nn::Linear fc(32 * 28 * 28, 10);
  const auto inputs = torch::randn({64, 1, 28, 28});
  int64_t faults = 0;
  for (int step = 0; step < warmup + measured; ++step) {
    const int64_t before = minorPageFaultsOfThisThread();
    fc(torch::relu(conv(inputs)).flatten(1)).sum().backward();
    if (step >= warmup) faults += minorPageFaultsOfThisThread() - before;
  }
  return faults;
}

// glibc's documented defaults (mallopt(3)), but with the mmap threshold fixed where glibc would
// raise it as large blocks are freed: memory a step frees goes back to the kernel. False where
// malloc is not glibc's (a sanitizer build).
bool releaseFreedHostMemory() {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1 && mallopt(M_TRIM_THRESHOLD, 128 << 10) == 1 &&
         mallopt(M_TOP_PAD, 128 << 10) == 1;
#else
  return false;
#endif
}

// Compared with the same steps in the same process while memory is released: ~8,800 faults a step
// here (the 6 MiB activations and gradients fault back in), against 0 retained.
TEST(HostProcess, RetainedMemoryIsReusedWithoutPageFaults) {
  if (!releaseFreedHostMemory()) GTEST_SKIP() << "malloc is not glibc's here (sanitizer build)";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // every allocation on this thread, where faults are counted
  const int64_t released = pageFaultsOfSteps(8, 8);
  if (retainFreedHostMemory() != HostMemoryRetention::Applied) {
    torch::set_num_threads(threads);
    GTEST_SKIP() << "MALLOC_* or GLIBC_TUNABLES malloc settings are in the environment";
  }
  const int64_t retained = pageFaultsOfSteps(8, 8);
  torch::set_num_threads(threads);
  EXPECT_GT(released, 8 * 1000) << "released memory should fault back in every step";
  EXPECT_LT(retained * 4, released) << "retained " << retained << ", released " << released;
}

TEST(HostProcess, MallocSettingsInTheEnvironmentWin) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const bool hadTunables = tunables != nullptr;
  const std::string tunablesBefore = hadTunables ? tunables : "";
  ASSERT_EQ(setenv("MALLOC_TOP_PAD_", "1048576", 1), 0);
  EXPECT_EQ(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  ASSERT_EQ(unsetenv("MALLOC_TOP_PAD_"), 0);
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576", 1), 0);
  EXPECT_EQ(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1), 0);
  EXPECT_NE(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  if (hadTunables) {
    ASSERT_EQ(setenv("GLIBC_TUNABLES", tunablesBefore.c_str(), 1), 0);
  } else {
    ASSERT_EQ(unsetenv("GLIBC_TUNABLES"), 0);
  }
}

TEST(HostProcess, IntraOpThreadsFollowTheRequestOrTheCoresPerRank) {
  const int before = torch::get_num_threads();
  EXPECT_EQ(setIntraOpThreads(1, 4), 1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  EXPECT_EQ(setIntraOpThreads(0, 1), cores);
  EXPECT_EQ(setIntraOpThreads(0, 2 * cores), 1);  // more ranks than cores: never 0
  setIntraOpThreads(before, 1);
}

}  // namespace
}  // namespace ringtrain
