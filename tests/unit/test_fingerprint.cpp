// The synchronisation fingerprint: its lines, and the cross-rank comparison run over an
// in-process communicator (threads as ranks) so the mismatch message can be checked.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "models/registry.h"
#include "trainer/allreduce/grad_sync.h"
#include "trainer/sync/fingerprint.h"

namespace ringtrain {
namespace {

// Threads as ranks: allgather is the only collective checkFingerprintsMatch uses.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(static_cast<size_t>(size)) {}

  void allgather(int rank, const torch::Tensor& input, torch::Tensor& output) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t round = round_;
    slots_[static_cast<size_t>(rank)] = input.clone();
    if (++arrived_ == size_) {
      gathered_ = torch::cat(slots_);
      arrived_ = 0;
      ++round_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return round_ != round; });
    }
    output.copy_(gathered_.reshape(output.sizes()));
  }

 private:
  const int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<torch::Tensor> slots_;
  torch::Tensor gathered_;
  int arrived_ = 0;
  int64_t round_ = 0;
};

class DoneWork : public Work {
 public:
  bool isCompleted() override { return true; }
  void wait(std::chrono::milliseconds) override {}
  std::string describe() const override { return "done"; }
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank, int size)
      : group_(group), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backendName() const override { return "threads"; }
  WorkPtr allreduce(torch::Tensor&, const std::string&, ReduceOp) override {
    throw CommError("unused");
  }
  WorkPtr broadcast(torch::Tensor&, int) override { throw CommError("unused"); }
  WorkPtr allgather(const torch::Tensor& input, torch::Tensor& output) override {
    group_.allgather(rank_, input, output);
    return std::make_shared<DoneWork>();
  }
  void barrier() override {}

 private:
  ThreadGroup& group_;
  const int rank_;
  const int size_;
};

std::vector<std::string> fingerprintOf(torch::nn::Module& model) {
  return syncFingerprint(model, planBuckets(model.parameters(), 25.0));
}

// Runs the check on `size` thread-ranks; rank r uses fingerprints[r]. Returns each rank's
// error message ("" when it passed).
std::vector<std::string> runCheck(const std::vector<std::vector<std::string>>& fingerprints) {
  const int size = static_cast<int>(fingerprints.size());
  ThreadGroup group(size);
  std::vector<std::string> errors(static_cast<size_t>(size));
  std::vector<std::thread> ranks;
  for (int r = 0; r < size; ++r) {
    ranks.emplace_back([&, r] {
      ThreadCommunicator comm(group, r, size);
      try {
        checkFingerprintsMatch(fingerprints[static_cast<size_t>(r)], comm, std::chrono::seconds(10),
                               "start-up");
      } catch (const TrainingError& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  return errors;
}

TEST(SyncFingerprint, ListsTensorsInBucketOrderThenBuffers) {
  auto mlp = makeModel("fashion_mlp");
  const auto lines = fingerprintOf(*mlp);
  ASSERT_EQ(lines.size(), 6u);
  // Buckets fill in reverse registration order (the order backward produces gradients).
  EXPECT_EQ(lines[0], "fc3.bias [10] Float (bucket 0)");
  EXPECT_EQ(lines[5], "fc1.weight [256, 784] Float (bucket 0)");  // 0.9 MB: one bucket
  torch::nn::Module bn;
  bn.register_module("bn", torch::nn::BatchNorm1d(4));
  const auto withBuffers = fingerprintOf(bn);
  EXPECT_EQ(withBuffers.back(), "bn.num_batches_tracked [] Long (buffer)");
}

TEST(SyncFingerprint, FirstDifference) {
  EXPECT_EQ(firstDifference({1, 2, 3}, {1, 2, 3}), -1);
  EXPECT_EQ(firstDifference({1, 2, 3}, {1, 5, 3}), 1);
  EXPECT_EQ(firstDifference({1, 2}, {1, 2, 3}), 2);
  EXPECT_EQ(firstDifference({}, {}), -1);
}

TEST(SyncFingerprint, MatchingRanksPass) {
  auto mlp = makeModel("fashion_mlp");
  const auto lines = fingerprintOf(*mlp);
  for (const auto& error : runCheck({lines, lines, lines})) EXPECT_EQ(error, "");
}

TEST(SyncFingerprint, MismatchNamesTheRankAndTheFirstDifferingTensorOnEveryRank) {
  auto mlp = makeModel("fashion_mlp");
  const auto good = fingerprintOf(*mlp);
  // A rank whose output layer has another shape: the first tensor in bucket order differs.
  auto bad = good;
  bad[0] = "fc3.bias [12] Float (bucket 0)";
  const auto errors = runCheck({good, good, bad});
  for (const auto& error : errors) {
    EXPECT_NE(error.find("rank 2 differs from rank 0"), std::string::npos) << error;
    EXPECT_NE(error.find("first at synchronised tensor #0"), std::string::npos) << error;
    EXPECT_NE(error.find("rank 0 has fc3.bias [10] Float (bucket 0)"), std::string::npos) << error;
    EXPECT_NE(error.find("rank 2 has fc3.bias [12] Float (bucket 0)"), std::string::npos) << error;
    EXPECT_NE(error.find("start-up"), std::string::npos) << error;
  }
  // A rank with an extra parameter on the top module (named_parameters lists it first, so
  // it is synchronised last): the lists differ where rank 0's ends.
  auto other = makeModel("fashion_mlp");
  other->register_parameter("extra", torch::zeros({3}));
  const auto extraErrors = runCheck({good, fingerprintOf(*other)});
  EXPECT_NE(extraErrors[0].find("rank 0 has nothing (it has only 6 tensors), rank 1 has extra "
                                "[3] Float (bucket 0)"),
            std::string::npos)
      << extraErrors[0];
  // A rank with fewer tensors: the difference is where its list ends.
  auto shorter = good;
  shorter.pop_back();
  const auto shortErrors = runCheck({good, shorter});
  EXPECT_NE(shortErrors[0].find("rank 1 has nothing (it has only 5 tensors)"), std::string::npos)
      << shortErrors[0];
}

}  // namespace
}  // namespace ringtrain
