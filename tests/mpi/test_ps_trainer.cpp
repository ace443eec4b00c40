// The Trainer in parameter-server mode under MPI: bsp equals all-reduce and single-process
// training, a partitioned checkpoint resumes exactly, what the mode cannot do is a config
// error. Tests skip where the world is too small for a server and a worker.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "data/sharding.h"
#include "tests/mpi/ps_fixtures.h"
#include "trainer/checkpoint/inference.h"
#include "trainer/optim/optimizer.h"
#include "trainer/trainer.h"

namespace ringtrain {
namespace {

using namespace pstest;

// ---------------------------------------------------------------------------------------
// bsp == all-reduce == one process on the global batch

struct BspCase {
  int servers;
  std::string optimizer;
  double clip;
};

class PsBsp : public ::testing::TestWithParam<BspCase> {};

TEST_P(PsBsp, EqualsAllReduceAndSingleProcessOnTheGlobalBatch) {
  const BspCase param = GetParam();
  if (worldSize() <= param.servers) GTEST_SKIP() << "needs more ranks than servers";
  const SharedTempDir tmp("bsp");
  Config cfg = psConfig(param.servers, "bsp");
  cfg.optimizer.name = param.optimizer;
  if (param.optimizer == "adamw") cfg.optimizer.lr = 0.002;
  cfg.train.grad_clip_norm = param.clip;
  auto data = std::make_shared<SyntheticImages>(512);

  RunOptions options{tmp.path() + "/ps", "", true, {}};
  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  Trainer ps(cfg, *world, options, freshModel(cfg.model.name), data, nullptr);
  const TrainSummary summary = ps.run();
  const int workers = worldSize() - param.servers;
  const bool server = ps.isParameterServer();
  ASSERT_EQ(summary.serverStats.has_value(), server);
  if (server) {
    EXPECT_EQ(summary.serverStats->updates, cfg.train.max_steps);
    EXPECT_EQ(summary.serverStats->pushes, cfg.train.max_steps * workers);
  }

  // All-reduce mode on the workers alone (same worker count), and one process on the
  // global batch.
  MPI_Comm split = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, server ? 1 : 0, worldRank(), &split);
  if (!server) {
    auto comm = makeCommunicator("ring", split);
    Config allreduce = cfg;
    allreduce.distributed.mode = "allreduce";
    RunOptions arOptions{tmp.path() + "/allreduce", "", true, {}};
    Trainer trainer(allreduce, *comm, arOptions, freshModel(cfg.model.name), data, nullptr);
    trainer.run();
    EXPECT_EQ(summary.steps, cfg.train.max_steps);
    const double vsAllreduce = maxAbsDiff(ps.model(), trainer.model());
    EXPECT_LT(vsAllreduce, 1e-6) << "bsp vs all-reduce on worker rank " << worldRank();

    auto reference = freshModel(cfg.model.name);
    auto optimizer = makeOptimizer(cfg.optimizer, reference->parameters());
    const ShardSampler whole(data->size(), cfg.data.batch_size * workers, 0, 1, cfg.train.seed,
                             true);
    for (int64_t step = 0; step < cfg.train.max_steps; ++step) {
      const Batch batch = data->get(whole.indices(0, step));
      optimizer->zero_grad();
      torch::nn::functional::cross_entropy(reference->forward(batch.inputs), batch.targets)
          .backward();
      if (param.clip > 0) torch::nn::utils::clip_grad_norm_(reference->parameters(), param.clip);
      setLearningRate(*optimizer, scheduledLearningRate(cfg.schedule, cfg.optimizer.lr, step,
                                                        cfg.train.max_steps));
      optimizer->step();
    }
    // One process sums the global batch's gradient in another order than the workers' mean
    // (float rounding, ~1e-7 relative): the equivalence bound of the all-reduce test, 1e-5.
    // AdamW divides by sqrt(v), which magnifies that rounding where a gradient is near zero,
    // by an amount that depends on the BLAS kernels: 1.1e-5 at np 5 on an AVX-512 machine
    // whose OpenBLAS picked its own kernels there (below 1e-5 with OPENBLAS_CORETYPE=SkylakeX
    // or Haswell). 5e-5 is 2.5% of one step's largest AdamW update (lr 0.002). The SGD cases,
    // whose update a wrong average would scale, keep 1e-5.
    const double bound = param.optimizer == "adamw" ? 5e-5 : 1e-5;
    EXPECT_LT(maxAbsDiff(ps.model(), *reference), bound) << "bsp vs one process";
    // The parameters really moved: not a comparison of two untouched models.
    EXPECT_GT(maxAbsDiff(ps.model(), *freshModel(cfg.model.name)), 1e-3);
  }
  MPI_Comm_free(&split);
}

INSTANTIATE_TEST_SUITE_P(Cases, PsBsp,
                         ::testing::Values(BspCase{1, "sgd", 0.0}, BspCase{2, "sgd", 0.0},
                                           BspCase{2, "adamw", 0.5}),
                         [](const auto& info) {
                           return "servers" + std::to_string(info.param.servers) + "_" +
                                  info.param.optimizer + (info.param.clip > 0 ? "_clip" : "");
                         });

// ---------------------------------------------------------------------------------------
// Checkpoints and errors through the Trainer in parameter-server mode.

// A run checkpointed at step 4 and resumed there ends bit-identical to the uninterrupted
// run (momentum state lives on the servers, so it must come back from their partitions).
TEST(PsCheckpoint, ResumeFromAPartitionedCheckpointIsExact) {
  if (worldSize() < 2) GTEST_SKIP() << "needs a server and a worker";
  const int servers = worldSize() >= 4 ? 2 : 1;
  const SharedTempDir tmp("ckpt");
  Config cfg = psConfig(servers, "bsp");
  cfg.train.max_steps = 8;
  cfg.checkpoint.enabled = true;
  cfg.checkpoint.every_steps = 4;
  auto data = std::make_shared<SyntheticImages>(512);
  const std::string runDir = tmp.path() + "/run";

  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  Trainer full(cfg, *world, RunOptions{runDir, "", true, {}, false, false},
               freshModel(cfg.model.name), data, nullptr);
  full.run();
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string step4 = runDir + "/checkpoints/step-00000004";
  for (int i = 0; i < servers; ++i) {
    EXPECT_TRUE(fs::exists(runDir + "/ps/server-" + std::to_string(i) +
                           "/checkpoints/step-00000004/MANIFEST"));
  }
  ASSERT_TRUE(fs::exists(step4 + "/MANIFEST"));
  ASSERT_TRUE(fs::exists(runDir + "/checkpoints/step-00000008/MANIFEST"));

  Trainer resumed(cfg, *world, RunOptions{runDir, step4, true, {}, false, false},
                  freshModel(cfg.model.name), data, nullptr);
  const TrainSummary summary = resumed.run();
  // The resumed run saves step 8 again, replacing the directory: read it only once every rank
  // is done (a read racing the replacement sees the old MANIFEST and a new file).
  MPI_Barrier(MPI_COMM_WORLD);
  if (!resumed.isParameterServer()) {
    EXPECT_EQ(summary.steps, 8);
    EXPECT_EQ(maxAbsDiff(full.model(), resumed.model()), 0.0);
    // The main checkpoint holds the gathered model: eval/export read it unchanged.
    const auto loaded = loadForInference(runDir + "/checkpoints/step-00000008", {}, nullptr);
    EXPECT_EQ(maxAbsDiff(full.model(), *loaded.model), 0.0);
  }
}

TEST(PsErrors, ImpossibleServerCountsAreConfigErrors) {
  auto data = std::make_shared<SyntheticImages>(64);
  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  Config cfg = psConfig(worldSize(), "bsp");
  try {
    Trainer(cfg, *world, RunOptions{"", "", true, {}, false, false}, freshModel("tiny"), data,
            nullptr);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no rank would be left"), std::string::npos) << e.what();
  }
  cfg.ps.servers = 0;
  EXPECT_THROW(Trainer(cfg, *world, RunOptions{"", "", true, {}, false, false}, freshModel("tiny"),
                       data, nullptr),
               ConfigError);
}

// The roles split every rank of the job: a Trainer given part of it refuses a ps config
// (instead of pairing up the wrong ranks, or training by all-reduce), as it refuses what
// the mode cannot do.
TEST(PsErrors, WhatParameterServerModeCannotDoIsAConfigError) {
  if (worldSize() < 2) GTEST_SKIP() << "needs a world to split";
  auto data = std::make_shared<SyntheticImages>(64);
  const Config cfg = psConfig(1, "bsp");
  const auto expectConfigError = [&](Communicator& comm, const Config& c, const std::string& what) {
    try {
      Trainer(c, comm, RunOptions{"", "", true, {}, false, false}, freshModel("tiny"), data,
              nullptr);
      FAIL() << "expected a ConfigError about " << what;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, worldRank() % 2, worldRank(), &half);
  {
    auto part = makeCommunicator("ring", half);
    expectConfigError(*part, cfg,
                      "communicator of " + std::to_string(part->size()) + " of the job's");
  }
  MPI_Comm_free(&half);

  auto world = makeCommunicator("ring", MPI_COMM_WORLD);
  Config nccl = cfg;
  nccl.distributed.backend = "nccl";
  expectConfigError(*world, nccl, "backend: nccl");
  Config check = psConfig(1, "asp");
  check.train.check_replicas_every = 5;
  expectConfigError(*world, check, "train.check_replicas_every needs ps.consistency: bsp");
}

}  // namespace
}  // namespace ringtrain
