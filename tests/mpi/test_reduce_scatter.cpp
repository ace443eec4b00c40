// Communicator::reduceScatter and allgatherShards, the halves of the all-reduce that the
// sharded optimizer (ZeRO-1) uses, on every backend path: the ring's messages, shared memory
// (one node), the hierarchical buffers (RINGTRAIN_RANKS_PER_NODE, every node size that
// divides the world) and MPI. Each rank's
// shard after reduceScatter must be bitwise what allreduce gives there; allgatherShards must
// give every rank every shard. Counts include 0, fewer than the ranks and not divisible by
// them; run by ctest at np 1..5 (and the hierarchical layouts).
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bitwise.h"
#include "collectives/mpi_communicator.h"

namespace ringtrain {
namespace {

using mpitest::bitwiseEqual;
using mpitest::kTimeout;

std::vector<std::int64_t> shardCounts(int n) {
  std::set<std::int64_t> counts = {0, 1, 7, n - 1, n + 1, 2 * n + 1, 4099, 300007};
  return {counts.begin(), counts.end()};
}

// Different on every rank, not exactly summable: bitwise equality then means the same order.
torch::Tensor rankValues(std::int64_t count, torch::ScalarType dtype, int rank) {
  torch::manual_seed(7 + rank);
  return (torch::randn({count}) * 3.0).to(dtype);
}

struct BackendCase {
  std::string backend;
  bool sharedBuffer;  // through allocateBuffer (shared memory / hierarchical where it applies)
  int ranksPerNode;   // > 0: RINGTRAIN_RANKS_PER_NODE, nodes of that many ranks
  std::string describe() const {
    return backend + (sharedBuffer ? " (shared buffer)" : "") +
           (ranksPerNode ? ", nodes of " + std::to_string(ranksPerNode) + " ranks" : "");
  }
};

// Every path, and the hierarchical buffers for each node size that splits the world into
// several nodes of more than one rank.
std::vector<BackendCase> backendCases() {
  std::vector<BackendCase> cases = {{"ring", false, 0}, {"ring", true, 0}, {"mpi", false, 0}};
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  for (int k = 2; k < n; ++k) {
    if (n % k == 0) cases.push_back({"ring", true, k});
  }
  return cases;
}

std::unique_ptr<Communicator> communicatorFor(const BackendCase& c) {
  std::unique_ptr<mpitest::RanksPerNode> nodes;
  if (c.ranksPerNode)
    nodes = std::make_unique<mpitest::RanksPerNode>(std::to_string(c.ranksPerNode));
  return makeCommunicator(c.backend, MPI_COMM_WORLD, kTimeout);
}

torch::Tensor onBackend(Communicator& comm, const torch::Tensor& values, bool sharedBuffer) {
  if (!sharedBuffer) return values.clone();
  auto buffer = comm.allocateBuffer(values.numel(), values.options());
  buffer.copy_(values);
  return buffer;
}

TEST(ReduceScatter, EachShardIsBitwiseTheAllreduce) {
  for (const auto& c : backendCases()) {
    auto comm = communicatorFor(c);
    const int n = comm->size();
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      for (const auto op : {ReduceOp::Sum, ReduceOp::Average}) {
        for (const std::int64_t count : shardCounts(n)) {
          const auto values = rankValues(count, dtype, comm->rank());
          auto reduced = onBackend(*comm, values, c.sharedBuffer);
          auto scattered = onBackend(*comm, values, c.sharedBuffer);
          comm->allreduce(reduced, "reference", op)->wait(kTimeout);
          comm->reduceScatter(scattered, "test", op)->wait(kTimeout);
          const RingChunk shard = shardOf(count, n, comm->rank());
          EXPECT_TRUE(bitwiseEqual(scattered.narrow(0, shard.offset, shard.length),
                                   reduced.narrow(0, shard.offset, shard.length)))
              << c.describe() << ", " << c10::toString(dtype) << ", " << count << " elements, np "
              << n;
        }
      }
    }
  }
}

TEST(AllgatherShards, EveryRankGetsEveryShard) {
  for (const auto& c : backendCases()) {
    auto comm = communicatorFor(c);
    const int n = comm->size();
    for (const std::int64_t count : shardCounts(n)) {
      // Everyone knows the whole answer; each rank writes only its own shard, NaN elsewhere.
      const auto want = torch::arange(count, torch::kFloat32) * 0.5 - 3.0;
      auto tensor =
          onBackend(*comm, torch::full({count}, std::nanf(""), torch::kFloat32), c.sharedBuffer);
      const RingChunk shard = shardOf(count, n, comm->rank());
      tensor.narrow(0, shard.offset, shard.length)
          .copy_(want.narrow(0, shard.offset, shard.length));
      comm->allgatherShards(tensor, "test")->wait(kTimeout);
      EXPECT_TRUE(bitwiseEqual(tensor, want))
          << c.describe() << ", " << count << " elements, np " << n;
    }
  }
}

TEST(Shards, CoverTheBufferOnceInTheRingsChunks) {
  for (int n = 1; n <= 8; ++n) {
    for (const std::int64_t count : {0, 1, 5, 8, 13, 1000}) {
      std::vector<int> owner(static_cast<std::size_t>(count), -1);
      for (int r = 0; r < n; ++r) {
        const RingChunk shard = shardOf(count, n, r);
        EXPECT_EQ(shard.offset, ringChunk(count, n, (r + 1) % n).offset);
        for (std::int64_t i = shard.offset; i < shard.offset + shard.length; ++i) {
          EXPECT_EQ(owner[static_cast<std::size_t>(i)], -1) << "element " << i << " twice";
          owner[static_cast<std::size_t>(i)] = r;
        }
      }
      for (std::int64_t i = 0; i < count; ++i) {
        EXPECT_GE(owner[static_cast<std::size_t>(i)], 0) << "element " << i << " of " << count;
      }
    }
  }
}

}  // namespace
}  // namespace ringtrain
