// The shared-memory all-reduce and the ring backend's shared buffers: the same bits as the
// ring's messages for every dtype, count (0, 1, fewer than the ranks, not divisible by them,
// several blocks) and world size, on any offset inside a window.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>

#include "collectives/mpi_communicator.h"
#include "collectives/shm_allreduce.h"
#include "core/error.h"

namespace ringtrain {
namespace {

const auto kTimeout = std::chrono::milliseconds(60000);

// A node communicator over MPI_COMM_WORLD (the tests run on one node).
MpiComm nodeComm() { return nodeCommOf(MPI_COMM_WORLD); }

// Rank-specific values of `dtype`, different on every rank.
torch::Tensor rankValues(std::int64_t count, torch::ScalarType dtype, int rank) {
  torch::manual_seed(100 + rank);
  if (at::isFloatingType(dtype)) return (torch::randn({count}) * 3.0).to(dtype);
  return torch::randint(-1000000, 1000000, {count}, torch::kInt64).to(dtype);
}

struct DtypeCase {
  torch::ScalarType torchType;
  RingDtype ringType;
};

TEST(ShmAllreduce, MatchesTheRingBitForBit) {
  MpiComm node = nodeComm();
  const int n = node.size();
  const std::vector<DtypeCase> dtypes = {
      {torch::kFloat32, RingDtype::Float32},   {torch::kFloat64, RingDtype::Float64},
      {torch::kInt32, RingDtype::Int32},       {torch::kInt64, RingDtype::Int64},
      {torch::kBFloat16, RingDtype::BFloat16}, {torch::kHalf, RingDtype::Float16}};
  // 0, 1, fewer than n, not divisible by n, and more than one 16 KiB block per chunk.
  const std::vector<std::int64_t> counts = {0, 1, n - 1, 2 * n + 1, 4099, 3 * 4096 * n + 5};
  RingWorkspace workspace;
  for (const auto& dtype : dtypes) {
    for (const std::int64_t count : counts) {
      const auto elem = static_cast<std::int64_t>(dtypeSize(dtype.ringType));
      const std::int64_t offset = 3 * elem;  // not at the start of the window
      SharedWindow window(node.get(), offset + count * elem + 8);
      torch::Tensor ring = rankValues(count, dtype.torchType, node.rank());
      std::memcpy(window.part(node.rank()) + offset, ring.data_ptr(),
                  static_cast<std::size_t>(count * elem));
      ringAllreduce(ring.data_ptr(), count, dtype.ringType, node.get());
      shmAllreduce(window, offset, count, dtype.ringType, workspace);
      EXPECT_EQ(std::memcmp(window.part(node.rank()) + offset, ring.data_ptr(),
                            static_cast<std::size_t>(count * elem)),
                0)
          << dtypeName(dtype.ringType) << ", " << count << " elements, np " << n;
      // The bytes around the range are left alone.
      const unsigned char* part = window.part(node.rank());
      EXPECT_EQ(part[0] | part[offset - 1] | part[offset + count * elem], 0);
    }
  }
}

TEST(ShmAllreduce, RejectsARangeOutsideTheWindow) {
  MpiComm node = nodeComm();
  SharedWindow window(node.get(), 64);
  RingWorkspace workspace;
  EXPECT_THROW(shmAllreduce(window, 8, 15, RingDtype::Float32, workspace), CommError);
  EXPECT_THROW(shmAllreduce(window, -4, 1, RingDtype::Float32, workspace), CommError);
}

MpiCommunicator& asMpi(Communicator& comm) { return dynamic_cast<MpiCommunicator&>(comm); }

TEST(SharedBuffers, OnlyTheRingOnOneNodeHandsOutSharedMemory) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  auto ring = makeCommunicator("ring", MPI_COMM_WORLD);
  const bool several = ring->size() > 1;
  EXPECT_EQ(asMpi(*ring).sharesMemory(), several);
  auto noShm = makeCommunicator("ring", MPI_COMM_WORLD, kTimeout, /*sharedMemory=*/false);
  EXPECT_FALSE(asMpi(*noShm).sharesMemory());
  auto mpi = makeCommunicator("mpi", MPI_COMM_WORLD);
  EXPECT_FALSE(asMpi(*mpi).sharesMemory());
  auto buffer = ring->allocateBuffer(1000, options);
  EXPECT_EQ(buffer.numel(), 1000);
  EXPECT_TRUE(torch::equal(buffer, torch::zeros({1000})));
}

// A slice of a shared buffer is summed in place (and nothing around it), with the same bits
// as the ring's messages give a plain tensor.
TEST(SharedBuffers, SlicesAreSummedInPlaceLikeTheRing) {
  auto ring = makeCommunicator("ring", MPI_COMM_WORLD);
  auto buffer = ring->allocateBuffer(1001, torch::TensorOptions().dtype(torch::kFloat32));
  auto values = rankValues(500, torch::kFloat32, ring->rank());
  auto slice = buffer.narrow(0, 7, 500);
  slice.copy_(values);
  auto plain = values.clone();
  ring->allreduce(slice)->wait(kTimeout);
  ring->allreduce(plain)->wait(kTimeout);
  EXPECT_TRUE(torch::equal(slice, plain));
  EXPECT_TRUE(torch::equal(buffer.narrow(0, 0, 7), torch::zeros({7})));
  EXPECT_TRUE(torch::equal(buffer.narrow(0, 507, 494), torch::zeros({494})));
  if (ring->size() > 1) {
    EXPECT_FALSE(torch::equal(slice, values));
  }
}

// The ring's large messages, then a shared-memory all-reduce, on one communication thread.
// A rank that finished the ring may still owe MPI protocol messages (the acknowledgement of a
// large receive); if it then waited at the shared-memory arrival without driving MPI, the
// peer would wait for that message and never arrive (bench_allreduce hung this way).
TEST(SharedBuffers, RingMessagesThenSharedMemoryDoNotDeadlock) {
  auto ring = makeCommunicator("ring", MPI_COMM_WORLD);
  const std::int64_t count = std::int64_t{16} << 20;  // 64 MiB of float32
  auto shared = ring->allocateBuffer(count, torch::TensorOptions().dtype(torch::kFloat32));
  auto plain = torch::ones({count});
  for (int round = 0; round < 4; ++round) {
    auto first = ring->allreduce(plain);
    auto second = ring->allreduce(shared);
    ASSERT_NO_THROW(first->wait(kTimeout));
    ASSERT_NO_THROW(second->wait(kTimeout));
  }
  EXPECT_EQ(shared[count - 1].item<float>(), 0.0f);
  EXPECT_EQ(plain[0].item<float>(), std::pow(static_cast<float>(ring->size()), 4.0f));
}

}  // namespace
}  // namespace ringtrain
