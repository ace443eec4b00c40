// The hierarchical (multi-node) all-reduce, on one machine: RINGTRAIN_RANKS_PER_NODE cuts the
// job into nodes of k ranks. For every k that divides the world into equal nodes of more than
// one rank, shared buffers take the hierarchical path; other layouts fall back to the ring.
// Either way the sums must be right and bitwise the same on every rank, for every dtype and
// for counts 0, 1, fewer than the ranks, not divisible by them, and several blocks per chunk.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "collectives/mpi_communicator.h"
#include "core/error.h"

#include "bitwise.h"

namespace ringtrain {
namespace {

const auto kTimeout = std::chrono::milliseconds(120000);

using mpitest::RanksPerNode;

int worldSize() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Rank-specific values of `dtype`, different on every rank. Floating values are multiples
// of 1/8 below 2 in magnitude, so every partial sum of up to 8 ranks is exact even in
// bfloat16, in any order: the float64 reference is then exact too.
torch::Tensor rankValues(std::int64_t count, torch::ScalarType dtype, int rank) {
  torch::manual_seed(300 + rank);
  auto values = torch::randint(-16, 16, {count}, torch::kInt64);
  if (at::isFloatingType(dtype)) return (values.to(torch::kFloat64) / 8.0).to(dtype);
  return (values * 1000003).to(dtype);
}

// Rank 0's bytes of `t`, as every rank sees them.
torch::Tensor rankZeroCopy(const torch::Tensor& t) {
  auto copy = t.clone();
  const auto bytes = static_cast<int>(copy.numel() * copy.element_size());
  MPI_Bcast(copy.data_ptr(), bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
  return copy;
}

TEST(Hierarchical, SumsAreExactAndTheSameOnEveryRank) {
  const int n = worldSize();
  const std::vector<torch::ScalarType> dtypes = {torch::kFloat32, torch::kFloat64,  torch::kInt32,
                                                 torch::kInt64,   torch::kBFloat16, torch::kHalf};
  for (int k = 1; k <= n; ++k) {
    RanksPerNode setting(std::to_string(k));
    auto comm = makeCommunicator("ring", MPI_COMM_WORLD, kTimeout);
    auto& mpi = dynamic_cast<MpiCommunicator&>(*comm);
    const bool equalNodes = n % k == 0 && k > 1 && n > k;
    EXPECT_EQ(mpi.isHierarchical(), equalNodes) << "np " << n << ", " << k << " per node";
    EXPECT_EQ(mpi.sharesMemory(), equalNodes || (k >= n && n > 1));
    const std::vector<std::int64_t> counts = {0, 1, k - 1, 2 * k + 1, 4099, 3 * 4096 * k + 5};
    for (const auto dtype : dtypes) {
      for (const std::int64_t count : counts) {
        const auto options = torch::TensorOptions().dtype(dtype);
        auto buffer = comm->allocateBuffer(count + 10, options);
        auto slice = buffer.narrow(0, 3, count);
        slice.copy_(rankValues(count, dtype, comm->rank()));
        auto expected = torch::zeros({count}, torch::kFloat64);
        for (int r = 0; r < n; ++r) expected += rankValues(count, dtype, r).to(torch::kFloat64);
        comm->allreduce(slice)->wait(kTimeout);
        const std::string where = std::string(c10::toString(dtype)) + ", " + std::to_string(count) +
                                  " elements, np " + std::to_string(n) + ", " + std::to_string(k) +
                                  " per node";
        EXPECT_TRUE(torch::equal(slice.to(torch::kFloat64), expected)) << where;
        EXPECT_TRUE(torch::equal(slice, rankZeroCopy(slice))) << where;
        // Nothing around the slice is touched.
        EXPECT_TRUE(torch::equal(buffer.narrow(0, 0, 3), torch::zeros({3}, options))) << where;
        EXPECT_TRUE(torch::equal(buffer.narrow(0, 3 + count, 7), torch::zeros({7}, options)))
            << where;
      }
    }
  }
}

// ReduceOp::Average is defined as every rank scaling by 1/N (rounded as mul_ rounds) and then
// the sum: bit for bit, on the hierarchical path too (the scale is folded into the node sums).
TEST(Hierarchical, AverageIsScalingThenTheSumBitForBit) {
  const int n = worldSize();
  for (int k = 2; k <= n; ++k) {
    if (n % k != 0 || n == k) continue;
    RanksPerNode setting(std::to_string(k));
    auto comm = makeCommunicator("ring", MPI_COMM_WORLD, kTimeout);
    ASSERT_TRUE(dynamic_cast<MpiCommunicator&>(*comm).isHierarchical());
    for (const auto dtype : {torch::kFloat32, torch::kFloat64, torch::kBFloat16, torch::kHalf}) {
      for (const std::int64_t count :
           {std::int64_t{1}, std::int64_t{4099}, std::int64_t{3 * 4096} * k + 5}) {
        const auto options = torch::TensorOptions().dtype(dtype);
        torch::manual_seed(500 + comm->rank());
        const auto values = (torch::randn({count}) * 3.0).to(dtype);
        auto averaged = comm->allocateBuffer(count, options);
        auto scaledThenSummed = comm->allocateBuffer(count, options);
        averaged.copy_(values);
        scaledThenSummed.copy_(values);
        scaledThenSummed.mul_(1.0 / n);
        comm->allreduce(averaged, "average", ReduceOp::Average)->wait(kTimeout);
        comm->allreduce(scaledThenSummed)->wait(kTimeout);
        EXPECT_TRUE(torch::equal(averaged, scaledThenSummed))
            << c10::toString(dtype) << ", " << count << " elements, " << k << " per node";
        EXPECT_TRUE(torch::equal(averaged, rankZeroCopy(averaged)));
      }
    }
  }
}

TEST(Hierarchical, ABadRanksPerNodeSettingIsAConfigError) {
  for (const char* bad : {"0", "-2", "two", "2x"}) {
    RanksPerNode setting(bad);
    EXPECT_THROW(nodeCommOf(MPI_COMM_WORLD), ConfigError) << bad;
  }
}

}  // namespace
}  // namespace ringtrain
