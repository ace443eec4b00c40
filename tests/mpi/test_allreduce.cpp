// Multi-process tests of the MPI-based communicators and the ring all-reduce. Every rank runs
// every test; values are chosen so sums are exact, and each rank checks its own result.
// Collectives are never skipped by one rank alone (that would hang the others): checks are
// EXPECTs after the collective, or ASSERTs whose outcome is the same on every rank.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "collectives/ring_allreduce.h"
#include "core/error.h"

namespace ringtrain {
namespace {

constexpr std::chrono::milliseconds kLong{std::chrono::minutes(2)};

int worldRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int worldSize() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Counts around the world size and the ring's chunk boundaries, plus one large odd count.
std::vector<std::int64_t> testCounts() {
  const std::int64_t n = worldSize();
  std::set<std::int64_t> counts = {0, 1, 2, 7, n - 1, n, n + 1, 2 * n + 1, 1000, 1000003};
  return {counts.begin(), counts.end()};
}

// value(rank, i) = rank*3 + i%17: small integers, so float32 sums are exact.
torch::Tensor filled(std::int64_t count, torch::Dtype dtype, int rank) {
  auto index = torch::arange(count, torch::kLong);
  return (index.remainder(17) + rank * 3).to(dtype);
}

torch::Tensor expectedSum(std::int64_t count, torch::Dtype dtype, int n) {
  auto index = torch::arange(count, torch::kLong);
  return (index.remainder(17) * n + 3 * n * (n - 1) / 2).to(dtype);
}

std::int64_t mismatches(const torch::Tensor& got, const torch::Tensor& want) {
  return got.ne(want).sum().item<std::int64_t>();
}

class CommunicatorTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { comm_ = makeCommunicator(GetParam(), MPI_COMM_WORLD); }
  std::unique_ptr<Communicator> comm_;
};

TEST_P(CommunicatorTest, ReportsRankSizeAndName) {
  EXPECT_EQ(comm_->rank(), worldRank());
  EXPECT_EQ(comm_->size(), worldSize());
  EXPECT_EQ(comm_->backendName(), GetParam());
}

TEST_P(CommunicatorTest, SumsFloat32ExactlyForEveryCount) {
  const int n = comm_->size();
  for (std::int64_t count : testCounts()) {
    auto tensor = filled(count, torch::kFloat, comm_->rank());
    comm_->allreduce(tensor, "count " + std::to_string(count))->wait(kLong);
    EXPECT_EQ(mismatches(tensor, expectedSum(count, torch::kFloat, n)), 0) << "count " << count;
  }
}

TEST_P(CommunicatorTest, SumsEveryDtypeExactly) {
  const int n = comm_->size();
  for (auto dtype : {torch::kDouble, torch::kInt, torch::kLong, torch::kBFloat16, torch::kHalf}) {
    for (std::int64_t count : {std::int64_t{1}, std::int64_t{n + 1}, std::int64_t{100003}}) {
      auto tensor = filled(count, dtype, comm_->rank());
      comm_->allreduce(tensor)->wait(kLong);
      EXPECT_EQ(mismatches(tensor, expectedSum(count, dtype, n)), 0)
          << c10::toString(dtype) << " count " << count;
    }
  }
}

TEST_P(CommunicatorTest, Int64KeepsHighBits) {
  auto tensor = torch::full({5}, (std::int64_t{1} << 40) + comm_->rank(), torch::kLong);
  comm_->allreduce(tensor)->wait(kLong);
  const std::int64_t n = comm_->size();
  EXPECT_EQ(tensor[4].item<std::int64_t>(), n * (std::int64_t{1} << 40) + n * (n - 1) / 2);
}

TEST_P(CommunicatorTest, QueuedCollectivesRunInOrder) {
  // Several operations in flight at once, waited for in reverse: FIFO execution on every
  // rank keeps them matched, and each buffer gets its own sum.
  const int n = comm_->size();
  std::vector<torch::Tensor> tensors;
  std::vector<WorkPtr> works;
  for (int k = 0; k < 4; ++k) {
    tensors.push_back(torch::full({1000 + k}, static_cast<float>(comm_->rank() + k)));
    works.push_back(comm_->allreduce(tensors.back(), "bucket " + std::to_string(k)));
  }
  for (int k = 3; k >= 0; --k) works[k]->wait(kLong);
  for (int k = 0; k < 4; ++k) {
    EXPECT_TRUE(works[k]->isCompleted());
    EXPECT_EQ(mismatches(tensors[k], torch::full({1000 + k}, n * (n - 1) / 2.0f + n * k)), 0);
    EXPECT_NE(works[k]->describe().find("bucket " + std::to_string(k)), std::string::npos);
  }
}

TEST_P(CommunicatorTest, BroadcastsFromTheLastRank) {
  const int root = comm_->size() - 1;
  auto tensor =
      comm_->rank() == root ? torch::arange(1001, torch::kFloat) * 2 : torch::full({1001}, -1.0f);
  comm_->broadcast(tensor, root)->wait(kLong);
  EXPECT_EQ(mismatches(tensor, torch::arange(1001, torch::kFloat) * 2), 0);
}

TEST_P(CommunicatorTest, AllgathersInRankOrder) {
  const int n = comm_->size();
  auto input = torch::arange(3, torch::kLong) + 10 * comm_->rank();
  auto output = torch::zeros({n, 3}, torch::kLong);
  comm_->allgather(input, output)->wait(kLong);
  auto want = torch::arange(3, torch::kLong).unsqueeze(0) +
              10 * torch::arange(n, torch::kLong).unsqueeze(1);
  EXPECT_EQ(mismatches(output, want), 0);
}

TEST_P(CommunicatorTest, BarrierWaitsForEveryRank) {
  // Each rank leaves a marker file before the barrier; after it, all markers must exist.
  MpiComm side;
  std::string dir(256, '\0');
  if (side.rank() == 0) {
    std::string pattern = std::filesystem::temp_directory_path() / "ringtrain-barrier-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) std::copy(pattern.begin(), pattern.end(), dir.begin());
  }
  checkMpi(MPI_Bcast(dir.data(), 256, MPI_CHAR, 0, side.get()), "MPI_Bcast");
  const std::filesystem::path path(dir.c_str());
  ASSERT_FALSE(path.empty()) << "rank 0 could not create a temporary directory";  // all ranks
  std::ofstream(path / ("rank" + std::to_string(side.rank()))) << "here";
  comm_->barrier();
  int present = 0;
  for (int r = 0; r < side.size(); ++r) {
    present += std::filesystem::exists(path / ("rank" + std::to_string(r))) ? 1 : 0;
  }
  EXPECT_EQ(present, side.size());
  checkMpi(MPI_Barrier(side.get()), "MPI_Barrier");  // everyone has looked before cleanup
  if (side.rank() == 0) std::filesystem::remove_all(path);
}

TEST_P(CommunicatorTest, TimeoutNamesTheOperation) {
  if (worldSize() == 1) GTEST_SKIP() << "a lone rank's all-reduce cannot block";
  // Rank 0 starts an all-reduce the others join only after rank 0 has seen its wait time out
  // (ordered by a barrier on a separate communicator), so the timeout is certain and nothing
  // can hang.
  MpiComm side;
  auto tensor = torch::full({4096}, 1.0f);
  if (side.rank() == 0) {
    WorkPtr work = comm_->allreduce(tensor, "timeout probe");
    std::string message;
    // Retry until the ring reports where it is blocked (the thread may not have started it
    // yet); bounded so a broken build fails rather than spins.
    for (int attempt = 0; attempt < 60000; ++attempt) {
      try {
        work->wait(std::chrono::milliseconds(1));
        message = "completed";
        break;
      } catch (const TimeoutError& e) {
        message = e.what();
        EXPECT_EQ(e.rank(), 0);
        if (GetParam() != "ring" || message.find("waiting for") != std::string::npos) break;
      }
    }
    EXPECT_NE(message.find("allreduce(timeout probe"), std::string::npos) << message;
    EXPECT_NE(message.find("did not complete within 1 ms"), std::string::npos) << message;
    if (GetParam() == "ring") {
      EXPECT_NE(message.find("waiting for data from rank " + std::to_string(side.size() - 1)),
                std::string::npos)
          << message;
    }
    EXPECT_FALSE(work->isCompleted());
    checkMpi(MPI_Barrier(side.get()), "MPI_Barrier");
    work->wait(kLong);
  } else {
    checkMpi(MPI_Barrier(side.get()), "MPI_Barrier");
    comm_->allreduce(tensor, "timeout probe")->wait(kLong);
  }
  EXPECT_EQ(tensor[0].item<float>(), static_cast<float>(side.size()));
}

TEST_P(CommunicatorTest, RejectsBadArgumentsBeforeQueueing) {
  auto flags = torch::ones({4}, torch::kBool);
  EXPECT_THROW(comm_->allreduce(flags), CommError);
  auto strided = torch::ones({4, 4}).t();
  EXPECT_THROW(comm_->allreduce(strided), CommError);
  auto tensor = torch::ones({4});
  EXPECT_THROW(comm_->broadcast(tensor, comm_->size()), CommError);
  auto wrongOutput = torch::zeros({comm_->size() * 4 + 1});
  EXPECT_THROW(comm_->allgather(tensor, wrongOutput), CommError);
  // The communicator still works afterwards (nothing was queued on any rank).
  comm_->allreduce(tensor)->wait(kLong);
  EXPECT_EQ(tensor[0].item<float>(), static_cast<float>(comm_->size()));
}

// ReduceOp::Average is, bit for bit, every rank scaling by 1/size and then the sum: through
// the ring's messages or MPI_Allreduce (plain tensors) and, for the ring on one node, shared
// memory (allocateBuffer), which folds the scale into its reduction. At np 3 and 5, 1/size is
// inexact, so a scale applied after the sum, or fused into one rounding, would show.
TEST_P(CommunicatorTest, AverageIsScalingThenTheSumBitForBit) {
  const int n = comm_->size();
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf}) {
    for (std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{n + 1},
                               std::int64_t{4099}, std::int64_t{3 * 4096 * n + 5}}) {
      torch::manual_seed(300 + comm_->rank());
      const auto values = (torch::randn({count}) * 3.0).to(dtype);
      auto want = values.clone().mul_(1.0 / n);
      comm_->allreduce(want, "scaled sum")->wait(kLong);
      auto plain = values.clone();
      comm_->allreduce(plain, "average", ReduceOp::Average)->wait(kLong);
      EXPECT_TRUE(torch::equal(plain, want)) << c10::toString(dtype) << " count " << count;
      auto shared = comm_->allocateBuffer(count + 3, values.options()).narrow(0, 3, count);
      shared.copy_(values);
      comm_->allreduce(shared, "shared average", ReduceOp::Average)->wait(kLong);
      EXPECT_TRUE(torch::equal(shared, want)) << c10::toString(dtype) << " count " << count;
    }
  }
  auto ints = torch::ones({4}, torch::kInt);
  EXPECT_THROW(comm_->allreduce(ints, "average", ReduceOp::Average), CommError);
}

INSTANTIATE_TEST_SUITE_P(Backends, CommunicatorTest, testing::Values("ring", "mpi"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(MakeCommunicator, UnknownBackendListsTheValidOnes) {
  try {
    makeCommunicator("gloo", MPI_COMM_WORLD);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.hint()).find("ring, mpi, nccl"), std::string::npos) << e.hint();
  }
}

// The ring directly, with tiny segments and the minimum of two slots, so every chunk is many
// segments and the look-ahead, slot reuse and send-before-overwrite paths all run.
TEST(RingAllreduce, TinySegmentsAndAnyCount) {
  MpiComm comm;
  const int n = comm.size();
  RingWorkspace workspace;
  RingProgress progress;
  for (std::int64_t segmentBytes : {4, 12, 64}) {
    for (int slots : {2, 3, 5}) {
      for (std::int64_t count : testCounts()) {
        if (count > 100000) continue;  // tiny segments make huge counts slow
        auto tensor = filled(count, torch::kFloat, comm.rank());
        RingOptions options;
        options.segmentBytes = segmentBytes;
        options.slots = slots;
        options.workspace = &workspace;
        options.progress = &progress;
        ringAllreduce(tensor.data_ptr(), count, RingDtype::Float32, comm.get(), options);
        EXPECT_EQ(mismatches(tensor, expectedSum(count, torch::kFloat, n)), 0)
            << "count " << count << " segment " << segmentBytes << " slots " << slots;
        EXPECT_EQ(progress.describe(), "not blocked in the ring");
      }
    }
  }
}

TEST(RingAllreduce, LargeBufferWithDefaultSegments) {
  MpiComm comm;
  const std::int64_t count = (std::int64_t{8} << 20) / 4 + 5;  // 8 MiB and an odd tail
  auto tensor = filled(count, torch::kFloat, comm.rank());
  ringAllreduce(tensor.data_ptr(), count, RingDtype::Float32, comm.get());
  EXPECT_EQ(mismatches(tensor, expectedSum(count, torch::kFloat, comm.size())), 0);
}

}  // namespace
}  // namespace ringtrain
