// DataParallel (a user's own loop) over real ranks: its averages are bitwise the Trainer's
// gradient synchronizer's for the same buckets, every rank starts from rank 0's weights,
// noSync() accumulation and two backward passes per step give the average of the sums,
// parameters without a gradient get the average of zeros, a forgotten noSync() is refused,
// and ranks that wrap different models get an error instead of a hang.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <string>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "data/torch_sampler.h"
#include "tests/mpi/bitwise.h"
#include "trainer/allreduce/grad_sync.h"
#include "trainer/data_parallel.h"

namespace ringtrain {
namespace {

using mpitest::bitwiseEqual;
using mpitest::kTimeout;

// fc1 -> relu -> {fc2 | extra}: `extra` is a branch a step may not take.
struct Net : torch::nn::Module {
  explicit Net(int64_t hidden = 16) {
    fc1 = register_module("fc1", torch::nn::Linear(8, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 3));
    extra = register_module("extra", torch::nn::Linear(hidden, 3));
  }
  torch::Tensor forward(const torch::Tensor& x, bool useExtra = false) {
    auto h = torch::relu(fc1(x));
    auto out = fc2(h);
    return useExtra ? out + extra(h) : out;
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, extra{nullptr};
};

std::shared_ptr<Net> netWithSeed(uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_shared<Net>();
}

DataParallelOptions dpOptions(double bucketMb, bool overlap) {
  DataParallelOptions o;
  o.bucketMb = bucketMb;
  o.firstBucketMb = std::min(1.0, bucketMb);
  o.overlap = overlap;
  o.timeout = kTimeout;
  return o;
}

GradSyncOptions trainerOptions(const DataParallelOptions& dp) {
  GradSyncOptions o;
  o.bucketMb = dp.bucketMb;
  o.firstBucketMb = dp.firstBucketMb;
  o.overlap = dp.overlap;
  o.timeout = dp.timeout;
  return o;
}

// Rank- and step-specific data, so that the all-reduce really mixes different gradients.
torch::Tensor loss(Net& net, int rank, int step, int micro = 0) {
  torch::manual_seed(1000 + 97 * rank + 13 * step + micro);
  auto x = torch::randn({5, 8});
  auto y = torch::randint(0, 3, {5}, torch::kInt64);
  return torch::nn::functional::cross_entropy(net.forward(x), y);
}

// Every rank holds bitwise rank 0's tensors.
void expectSameOnEveryRank(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                           const std::string& what) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto mine = tensors[i].detach().reshape({-1}).contiguous();
    auto all = torch::empty({comm.size() * mine.numel()}, mine.options());
    comm.allgather(mine, all)->wait(kTimeout);
    auto rows = all.view({comm.size(), mine.numel()});
    for (int r = 1; r < comm.size(); ++r) {
      EXPECT_TRUE(bitwiseEqual(rows[r], rows[0])) << what << " " << i << " of rank " << r;
    }
  }
}

std::vector<torch::Tensor> grads(const torch::nn::Module& net) {
  std::vector<torch::Tensor> out;
  // A parameter without a gradient counts as zeros, as DataParallel averages it.
  for (const auto& p : net.parameters()) {
    out.push_back(p.grad().defined() ? p.grad().detach().clone() : torch::zeros_like(p));
  }
  return out;
}

class DataParallelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    comm_ = makeCommunicator(GetParam(), MPI_COMM_WORLD);
  }
  std::unique_ptr<Communicator> comm_;
};

// The loop of docs/api.md against the Trainer's own synchronizer on a twin model: the same
// buckets, so the same bits, step after step (SGD moves both alike).
TEST_P(DataParallelTest, AveragesBitwiseLikeTheTrainersSynchronizer) {
  for (const bool overlap : {true, false}) {
    for (const double bucketMb : {0.001, 25.0}) {
      const auto options = dpOptions(bucketMb, overlap);
      auto mine = netWithSeed(7);
      auto twin = netWithSeed(7);
      DataParallel dp(*comm_, mine, options);
      GradientSynchronizer trainers(*comm_, twin->parameters(), trainerOptions(options));
      ASSERT_EQ(dp.buckets().size(), trainers.layout().size());
      torch::optim::SGD sgdMine(mine->parameters(), torch::optim::SGDOptions(0.1));
      torch::optim::SGD sgdTwin(twin->parameters(), torch::optim::SGDOptions(0.1));
      for (int step = 0; step < 3; ++step) {
        sgdMine.zero_grad();
        loss(*mine, comm_->rank(), step).backward();
        dp.synchronize();
        sgdTwin.zero_grad();
        loss(*twin, comm_->rank(), step).backward();
        trainers.synchronize(step);
        const auto a = grads(*mine);
        const auto b = grads(*twin);
        for (size_t i = 0; i < a.size(); ++i) {
          EXPECT_TRUE(bitwiseEqual(a[i], b[i])) << "gradient " << i << ", step " << step
                                                << ", overlap " << overlap << ", " << bucketMb;
        }
        sgdMine.step();
        sgdTwin.step();
      }
      expectSameOnEveryRank(*comm_, mine->parameters(), "parameter");
      EXPECT_EQ(dp.steps(), 3);
    }
  }
}

TEST_P(DataParallelTest, EveryRankStartsFromRankZerosWeights) {
  auto net = netWithSeed(100 + comm_->rank());  // differently initialised on every rank
  auto rankZeros = netWithSeed(100);
  DataParallel dp(*comm_, net, dpOptions(25.0, true));
  expectSameOnEveryRank(*comm_, net->parameters(), "parameter");
  const auto got = net->parameters();
  const auto want = rankZeros->parameters();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(bitwiseEqual(got[i], want[i])) << i;
}

// Three micro-batches, the first two in noSync(): bitwise the Trainer's accumulation.
TEST_P(DataParallelTest, NoSyncAccumulatesLikeTheTrainer) {
  const auto options = dpOptions(0.001, true);
  auto mine = netWithSeed(7);
  auto twin = netWithSeed(7);
  DataParallel dp(*comm_, mine, options);
  GradientSynchronizer trainers(*comm_, twin->parameters(), trainerOptions(options));
  for (int step = 0; step < 2; ++step) {
    for (auto& p : mine->parameters()) p.mutable_grad() = torch::Tensor();
    for (auto& p : twin->parameters()) p.mutable_grad() = torch::Tensor();
    {
      auto local = dp.noSync();
      for (int micro = 0; micro < 2; ++micro) loss(*mine, comm_->rank(), step, micro).backward();
    }
    loss(*mine, comm_->rank(), step, 2).backward();
    dp.synchronize();
    for (int micro = 0; micro < 3; ++micro) {
      trainers.prepareBackward(step, micro == 2);
      loss(*twin, comm_->rank(), step, micro).backward();
    }
    trainers.synchronize(step);
    const auto a = grads(*mine);
    const auto b = grads(*twin);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(bitwiseEqual(a[i], b[i])) << "gradient " << i << ", step " << step;
    }
  }
}

// A GAN discriminator's step: a real and a fake batch, two backward passes, one average. The
// result is the average over ranks of both batches' gradients, computed here by hand.
TEST_P(DataParallelTest, TwoBackwardPassesPerStepAverageTheirSum) {
  auto net = netWithSeed(7);
  auto reference = netWithSeed(7);
  DataParallel dp(*comm_, net, dpOptions(0.001, true));
  const int rank = comm_->rank();
  {
    auto local = dp.noSync();
    loss(*net, rank, 0, /*micro=*/0).backward();  // "real"
  }
  loss(*net, rank, 0, /*micro=*/1).backward();  // "fake"
  dp.synchronize();
  (loss(*reference, rank, 0, 0) + loss(*reference, rank, 0, 1)).backward();
  const auto got = grads(*net);
  auto want = grads(*reference);
  for (size_t i = 0; i < want.size(); ++i) {
    comm_->allreduce(want[i])->wait(kTimeout);
    want[i].div_(comm_->size());
    EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-5, 1e-7)) << "gradient " << i;
  }
  expectSameOnEveryRank(*comm_, got, "gradient");
}

// The branch `extra` is taken on odd ranks only: even ranks send zeros for it, nobody waits.
TEST_P(DataParallelTest, AParameterWithoutAGradientGetsTheAverageOfZeros) {
  auto net = netWithSeed(7);
  DataParallel dp(*comm_, net, dpOptions(0.001, true));
  auto probe = torch::ones({1, 8});
  const bool useExtra = comm_->rank() % 2 == 1;
  net->forward(probe, useExtra).sum().backward();
  dp.synchronize();
  ASSERT_TRUE(net->extra->bias.grad().defined());
  const double users = comm_->size() / 2;  // the odd ranks
  // d(sum of outputs)/d(extra.bias) is 1 per output on a rank that took the branch.
  EXPECT_FLOAT_EQ(net->extra->bias.grad()[0].item<float>(),
                  static_cast<float>(users / comm_->size()));
  expectSameOnEveryRank(*comm_, grads(*net), "gradient");
}

// Two backward passes without noSync(): the second gradient would be mixed into a bucket that
// was already sent. Refused with the fix named (with one rank nothing is sent: no error).
TEST_P(DataParallelTest, ASecondBackwardWithoutNoSyncIsRefused) {
  if (comm_->size() == 1) GTEST_SKIP() << "one rank sends nothing";
  auto net = netWithSeed(7);
  DataParallel dp(*comm_, net, dpOptions(0.001, true));
  loss(*net, comm_->rank(), 0).backward();
  try {
    loss(*net, comm_->rank(), 0, 1).backward();
    ADD_FAILURE() << "the second backward was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("after"), std::string::npos) << e.what();
  }
  dp.synchronize();  // the first backward's buckets still complete on every rank
}

// A generator and a discriminator: one DataParallel each on one communicator, synchronised
// in turn; the generator's backward passes through the discriminator under its noSync().
TEST_P(DataParallelTest, TwoModulesShareOneCommunicator) {
  auto generator = netWithSeed(11);
  auto discriminator = netWithSeed(12);
  DataParallel g(*comm_, generator, dpOptions(0.001, true));
  DataParallel d(*comm_, discriminator, dpOptions(0.001, true));
  for (int step = 0; step < 2; ++step) {
    auto fake = generator->forward(torch::randn({4, 8})).repeat({1, 3}).narrow(1, 0, 8);
    discriminator->zero_grad();
    discriminator->forward(fake.detach()).sum().backward();
    d.synchronize();
    generator->zero_grad();
    {
      auto keepLocal = d.noSync();
      discriminator->forward(fake).sum().backward();
    }
    g.synchronize();
    expectSameOnEveryRank(*comm_, grads(*generator), "generator gradient");
    expectSameOnEveryRank(*comm_, grads(*discriminator), "discriminator gradient");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DataParallelTest, ::testing::Values("ring", "mpi"));

// Rank 1 wraps a wider model: every rank gets the same TrainingError naming the difference,
// before any gradient bucket could pair up with the wrong one.
TEST(DataParallelMismatch, RanksWithDifferentModelsAreToldWhy) {
  auto comm = makeCommunicator("ring", MPI_COMM_WORLD);
  if (comm->size() == 1) GTEST_SKIP() << "needs two ranks";
  torch::manual_seed(7);
  auto net = std::make_shared<Net>(comm->rank() == 1 ? 32 : 16);
  try {
    DataParallel dp(*comm, net, dpOptions(25.0, true));
    ADD_FAILURE() << "different models were accepted";
  } catch (const TrainingError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 has extra.weight [3, 32]"), std::string::npos)
        << e.what();
  }
}

// The sampler shards like the Trainer: disjoint ranks, equal counts, a new order per pass.
TEST(ShardedSamplerRanks, ReadDisjointSamplesOfEqualCount) {
  auto comm = makeCommunicator("mpi", MPI_COMM_WORLD);
  const int64_t n = 103;
  ShardedSampler sampler(n, 4, comm->rank(), comm->size(), 5);
  auto dataset = torch::data::datasets::TensorDataset(torch::arange(n).view({n, 1}));
  auto loader = torch::data::make_data_loader(dataset, sampler,
                                              torch::data::DataLoaderOptions().batch_size(4));
  std::vector<int64_t> firstEpoch;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> mine;
    for (auto& batch : *loader) {
      for (auto& example : batch) mine.push_back(example.data.item<int64_t>());
    }
    const int64_t perRank = n / (4 * comm->size()) * 4;
    ASSERT_EQ(static_cast<int64_t>(mine.size()), perRank);
    auto all = torch::empty({comm->size() * perRank}, torch::kInt64);
    comm->allgather(torch::tensor(mine, torch::kInt64), all)->wait(kTimeout);
    EXPECT_EQ(std::get<0>(torch::_unique(all)).numel(), all.numel()) << "ranks overlap";
    if (epoch == 0) firstEpoch = mine;
    if (epoch == 1 && perRank > 4) {
      EXPECT_NE(mine, firstEpoch) << "the order did not change";
    }
  }
}

}  // namespace
}  // namespace ringtrain
