#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "trainer/host_process.h"

namespace ringtrain {
namespace {

int64_t minorPageFaultsOfThisThread() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// Page faults of training steps 5..n of a small conv net (batch 64, 28x28): its activations and
// gradients are freed at the end of every step and allocated again in the next. With glibc's
// defaults every step faults >1,500 pages (6 MiB) back in; retained, none.
int64_t pageFaultsOfSteps(int steps) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(1, 32, 3).padding(1));
  torch::nn::Linear fc(32 * 28 * 28, 10);
  const auto inputs = torch::randn({64, 1, 28, 28});
  int64_t faults = 0;
  for (int step = 0; step < steps; ++step) {
    const int64_t before = minorPageFaultsOfThisThread();
    fc(torch::relu(conv(inputs)).flatten(1)).sum().backward();
    if (step >= 4) faults += minorPageFaultsOfThisThread() - before;  // 0-3 grow the heap
  }
  return faults;
}

TEST(HostProcess, RetainedMemoryIsReusedWithoutPageFaults) {
  if (retainFreedHostMemory() != HostMemoryRetention::Applied) {
    GTEST_SKIP() << "malloc is not glibc's here (sanitizer build), or MALLOC_* is set";
  }
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // every allocation on this thread, where faults are counted
  EXPECT_LT(pageFaultsOfSteps(10), 100);
  torch::set_num_threads(threads);
}

TEST(HostProcess, MallocSettingsInTheEnvironmentWin) {
  ASSERT_EQ(setenv("MALLOC_TOP_PAD_", "1048576", 1), 0);
  EXPECT_EQ(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  ASSERT_EQ(unsetenv("MALLOC_TOP_PAD_"), 0);
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576", 1), 0);
  EXPECT_EQ(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1), 0);
  EXPECT_NE(retainFreedHostMemory(), HostMemoryRetention::LeftToEnvironment);
  ASSERT_EQ(unsetenv("GLIBC_TUNABLES"), 0);
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
