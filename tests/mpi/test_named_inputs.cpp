// A model with two named inputs trained by the Trainer, in both modes: the batch's named
// tensors reach forward() on every rank, the model learns from both (a task neither input
// decides alone), and asking for an input the batch lacks is one ModelError naming those
// it holds.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "tests/mpi/ps_fixtures.h"
#include "trainer/trainer.h"

namespace ringtrain {
namespace {

using namespace pstest;

// Class 1 when the "left" features sum to more than the "right" ones: neither input alone
// does better than chance.
class LeftOrRight : public Dataset {
 public:
  explicit LeftOrRight(int64_t n) {
    torch::manual_seed(99);
    left_ = torch::randn({n, 4});
    right_ = torch::randn({n, 4});
    targets_ = left_.sum(1).gt(right_.sum(1)).to(torch::kInt64);
  }
  int64_t size() const override { return left_.size(0); }
  Batch get(const std::vector<int64_t>& indices) const override {
    const auto idx = torch::tensor(indices, torch::kInt64);
    Batch batch;
    batch.named = {{"left", left_.index_select(0, idx)}, {"right", right_.index_select(0, idx)}};
    batch.targets = targets_.index_select(0, idx);
    return batch;
  }

 private:
  torch::Tensor left_, right_, targets_;
};

class TwoTowers : public Model {
 public:
  explicit TwoTowers(std::string rightName) : rightName_(std::move(rightName)) {
    left_ = register_module("left", torch::nn::Linear(4, 8));
    right_ = register_module("right", torch::nn::Linear(4, 8));
    head_ = register_module("head", torch::nn::Linear(16, 2));
  }
  torch::Tensor forward(const Inputs& inputs) override {
    const auto l = torch::relu(left_(inputs.at("left")));
    const auto r = torch::relu(right_(inputs.at(rightName_)));
    return head_(torch::cat({l, r}, 1));
  }

 private:
  std::string rightName_;
  torch::nn::Linear left_{nullptr}, right_{nullptr}, head_{nullptr};
};

Config namedInputsConfig(const std::string& mode) {
  Config cfg = psConfig(1, "bsp");
  cfg.distributed.mode = mode;
  cfg.optimizer.name = "adamw";
  cfg.optimizer.lr = 0.02;
  cfg.schedule.name = "constant";
  cfg.schedule.warmup_steps = 0;
  cfg.train.max_steps = 0;
  cfg.train.epochs = 3;
  return cfg;
}

class NamedInputs : public ::testing::TestWithParam<std::string> {};

TEST_P(NamedInputs, TrainAModelThatReadsBoth) {
  const std::string mode = GetParam();
  if (mode == "ps" && worldSize() < 2) GTEST_SKIP() << "needs a server and a worker";
  const SharedTempDir tmp("named_" + mode);
  const Config cfg = namedInputsConfig(mode);
  auto train = std::make_shared<LeftOrRight>(1024);
  auto test = std::make_shared<LeftOrRight>(256);
  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  torch::manual_seed(5);
  Trainer trainer(cfg, *world, RunOptions{tmp.path(), "", true, {}, false, false},
                  std::make_shared<TwoTowers>("right"), train, test);
  const TrainSummary summary = trainer.run();
  if (trainer.isParameterServer()) return;
  // A linear rule of both inputs: chance is 50%, either input alone about 75%.
  EXPECT_GT(summary.finalEval.accuracy, 0.9) << mode << " on rank " << worldRank();
}

INSTANTIATE_TEST_SUITE_P(Modes, NamedInputs, ::testing::Values("allreduce", "ps"));

TEST(NamedInputsErrors, AMissingInputNamesTheInputsThereAre) {
  const SharedTempDir tmp("named_missing");
  const Config cfg = namedInputsConfig("allreduce");
  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  torch::manual_seed(5);
  // The Trainer runs the model on the first samples before training: the constructor refuses.
  try {
    Trainer trainer(cfg, *world, RunOptions{tmp.path(), "", true, {}, false, false},
                    std::make_shared<TwoTowers>("rigth"), std::make_shared<LeftOrRight>(64),
                    nullptr);
    FAIL() << "a model reading a missing input was accepted";
  } catch (const ModelError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'rigth'"), std::string::npos) << message;
    EXPECT_NE(message.find("left, right"), std::string::npos) << message;
    EXPECT_NE(message.find("did you mean 'right'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ringtrain
