// Parameter-server protocol under MPI: every asp push is applied, the ssp staleness bound
// holds (checked against clocks that workers publish in shared memory, not against the
// server's own bookkeeping), early finishers do not hang anyone, 1 server + 4 workers run
// 1000 steps. Tests need at least one worker and one server; they skip where the world is
// too small.
#include <gtest/gtest.h>
#include <mpi.h>

#include <thread>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "tests/mpi/ps_fixtures.h"
#include "trainer/ps/server.h"
#include "trainer/ps/worker.h"

namespace ringtrain {
namespace {

using namespace pstest;

// ---------------------------------------------------------------------------------------
// Protocol-level tests: ps::Server / ps::Worker driven directly on a tiny model.

struct Session {
  Config cfg;
  ps::Roles roles;
  ps::Layout layout;
  ps::Comms comms;
  int rank;

  Session(Config config, ModelPtr model)
      : cfg(std::move(config)),
        roles(ps::assignRoles(worldSize(), cfg.ps.servers, cfg.ps.placement)),
        layout(ps::parameterInfo(*model), roles.numServers()),
        comms(ps::makeComms(MPI_COMM_WORLD, roles)),
        rank(worldRank()) {}
  bool server() const { return roles.isServer(rank); }
  int workerIndex() const { return roles.workerIndex(rank); }
};

Config tinyConfig(const std::string& consistency, int64_t staleness = 2) {
  Config cfg;
  cfg.optimizer.name = "sgd";
  cfg.optimizer.lr = 0.125;  // exact in binary: sums of updates are exact
  cfg.optimizer.momentum = 0.0;
  cfg.distributed.timeout_s = 120;
  cfg.ps.servers = 1;
  cfg.ps.consistency = consistency;
  cfg.ps.staleness = staleness;
  return cfg;
}

// Sets every gradient to `value`.
void constantGradients(Model& model, float value) {
  for (auto& p : model.parameters()) p.mutable_grad() = torch::full_like(p, value);
}

class PsConsistency : public ::testing::TestWithParam<std::string> {};

// Constant gradients of 1: bsp applies one averaged update per step, asp/ssp one update per
// push, scaled by 1/workers; either way the parameters move by exactly lr per step.
TEST_P(PsConsistency, AppliesTheRightNumberOfUpdates) {
  if (worldSize() < 2) GTEST_SKIP() << "needs a server and a worker";
  const std::string consistency = GetParam();
  auto model = freshModel("tiny");
  auto initial = freshModel("tiny");
  Session s(tinyConfig(consistency), model);
  const int64_t steps = 10;
  const int64_t workers = s.roles.numWorkers();
  const int64_t expected = consistency == "bsp" ? steps : steps * workers;
  if (s.server()) {
    ps::Server server(s.cfg, s.roles, s.layout, s.comms.ps.get(), s.comms.role.get());
    const ps::ServerStats stats = server.serve();
    EXPECT_EQ(stats.pushes, steps * workers);
    EXPECT_EQ(stats.updates, expected);
    return;
  }
  ps::Worker worker(s.cfg, s.roles, s.layout, s.comms.ps.get(), model->parameters(), false);
  if (s.workerIndex() == 0) worker.sendInitial();
  worker.sync(0, false);
  for (int64_t step = 0; step < steps; ++step) {
    constantGradients(*model, 1.0f);
    worker.pushAndPull(step, steps);
  }
  worker.sync(steps, false);
  EXPECT_EQ(worker.serverUpdates(), expected);
  auto now = model->parameters();
  auto before = initial->parameters();
  for (size_t i = 0; i < now.size(); ++i) {
    const auto expectedValue = before[i] - 0.125 * static_cast<double>(steps);
    EXPECT_LT((now[i] - expectedValue).abs().max().item<double>(), 1e-5) << "parameter " << i;
  }
  worker.finish();
}

// Workers of unequal shard lengths: worker i runs 3 + 4 i steps. Nobody hangs, and every
// push is accounted for.
TEST_P(PsConsistency, EarlyFinishersDoNotHangTheOthers) {
  if (worldSize() < 3) GTEST_SKIP() << "needs a server and two workers";
  const std::string consistency = GetParam();
  auto model = freshModel("tiny");
  Session s(tinyConfig(consistency, 1), model);
  const auto stepsOf = [](int w) { return int64_t{3} + 4 * w; };
  int64_t totalPushes = 0;
  for (int w = 0; w < s.roles.numWorkers(); ++w) totalPushes += stepsOf(w);
  if (s.server()) {
    ps::Server server(s.cfg, s.roles, s.layout, s.comms.ps.get(), s.comms.role.get());
    const ps::ServerStats stats = server.serve();
    EXPECT_EQ(stats.pushes, totalPushes);
    if (consistency == "bsp") {
      EXPECT_EQ(stats.updates, stepsOf(s.roles.numWorkers() - 1));
    }
    return;
  }
  ps::Worker worker(s.cfg, s.roles, s.layout, s.comms.ps.get(), model->parameters(), false);
  if (s.workerIndex() == 0) worker.sendInitial();
  worker.sync(0, false);
  const int64_t mine = stepsOf(s.workerIndex());
  for (int64_t step = 0; step < mine; ++step) {
    constantGradients(*model, 0.5f);
    worker.pushAndPull(step, mine);
  }
  worker.finish();
}

INSTANTIATE_TEST_SUITE_P(Modes, PsConsistency, ::testing::Values("bsp", "asp", "ssp"));

// Clocks the workers publish in memory shared by every rank of the node: finished[w] is the
// number of steps worker w has finished (stored before its push leaves), started[w] the
// number it has started. Seq-cst atomics; the MPI messages in between order them.
class SharedClocks {
 public:
  explicit SharedClocks(int workers) : workers_(workers) {
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node_);
    int nodeSize = 0;
    MPI_Comm_size(node_, &nodeSize);
    allOnOneNode_ = nodeSize == worldSize();
    int nodeRank = 0;
    MPI_Comm_rank(node_, &nodeRank);
    const MPI_Aint bytes = nodeRank == 0 ? static_cast<MPI_Aint>(2 * workers * sizeof(int64_t)) : 0;
    void* base = nullptr;
    MPI_Win_allocate_shared(bytes, sizeof(int64_t), MPI_INFO_NULL, node_, &base, &win_);
    MPI_Aint size = 0;
    int unit = 0;
    MPI_Win_shared_query(win_, 0, &size, &unit, &base);
    clocks_ = static_cast<int64_t*>(base);
    if (nodeRank == 0) std::fill(clocks_, clocks_ + 2 * workers, int64_t{0});
    MPI_Barrier(node_);
  }
  ~SharedClocks() {
    MPI_Win_free(&win_);
    MPI_Comm_free(&node_);
  }
  bool allOnOneNode() const { return allOnOneNode_; }
  void setFinished(int w, int64_t v) { __atomic_store_n(&clocks_[w], v, __ATOMIC_SEQ_CST); }
  void setStarted(int w, int64_t v) {
    __atomic_store_n(&clocks_[workers_ + w], v, __ATOMIC_SEQ_CST);
  }
  int64_t finished(int w) const { return __atomic_load_n(&clocks_[w], __ATOMIC_SEQ_CST); }
  int64_t started(int w) const { return __atomic_load_n(&clocks_[workers_ + w], __ATOMIC_SEQ_CST); }

 private:
  int workers_;
  MPI_Comm node_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  int64_t* clocks_ = nullptr;
  bool allOnOneNode_ = false;
};

// No worker ever starts step t + s + 1 while another has not finished step t; and the bound
// is not stricter than s: worker 0 does get s steps ahead of a worker that holds back.
TEST(PsSsp, StalenessBoundHoldsAndIsReached) {
  if (worldSize() < 3) GTEST_SKIP() << "needs a server and two workers";
  const int64_t s = 2;
  const int64_t steps = 30;
  auto model = freshModel("tiny");
  Session session(tinyConfig("ssp", s), model);
  const int workers = session.roles.numWorkers();
  SharedClocks clocks(workers);
  if (!clocks.allOnOneNode()) GTEST_SKIP() << "the clock instrument needs one node";
  if (session.server()) {
    ps::Server server(session.cfg, session.roles, session.layout, session.comms.ps.get(),
                      session.comms.role.get());
    const ps::ServerStats stats = server.serve();
    // Worker 0 finished s steps while worker 1 held back at 0, and no worker ever got
    // more than s + 1 finished steps ahead of another.
    EXPECT_GE(stats.maxClockGap, s);
    EXPECT_LE(stats.maxClockGap, s + 1);
    EXPECT_EQ(stats.pushes, steps * workers);
    return;
  }
  const int me = session.workerIndex();
  ps::Worker worker(session.cfg, session.roles, session.layout, session.comms.ps.get(),
                    model->parameters(), false);
  if (me == 0) worker.sendInitial();
  worker.sync(0, false);
  int64_t worstLead = 0;
  for (int64_t step = 0; step < steps; ++step) {
    clocks.setStarted(me, step + 1);
    for (int v = 0; v < workers; ++v) {
      if (v == me) continue;
      // Starting `step` requires every other worker to have finished step - s - 1.
      EXPECT_GE(clocks.finished(v), step - s)
          << "worker " << me << " started step " << step << " while worker " << v
          << " had finished only " << clocks.finished(v) << " steps";
      worstLead = std::max(worstLead, step - clocks.finished(v));
    }
    if (me == 1 && step == 0) {
      // Hold back until worker 0 has started step s (allowed), then check it is stuck there.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (clocks.started(0) < s + 1 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      EXPECT_EQ(clocks.started(0), s + 1) << "worker 0 could not run " << s << " steps ahead";
    }
    constantGradients(*model, 0.25f);
    clocks.setFinished(me, step + 1);
    worker.pushAndPull(step, steps);
  }
  EXPECT_LE(worstLead, s);
  worker.finish();
}

// 1 server + 4 workers on an oversubscribed machine, real backward with overlapped pushes,
// 1000 steps of each consistency model; afterwards every worker holds the same parameters.
TEST(PsNoDeadlock, OneServerFourWorkersThousandSteps) {
  if (worldSize() != 5) GTEST_SKIP() << "runs at 5 ranks";
  for (const std::string consistency : {"bsp", "asp", "ssp"}) {
    SCOPED_TRACE(consistency);
    auto model = freshModel("tiny");
    Config cfg = tinyConfig(consistency, 2);
    cfg.optimizer.lr = 0.01;
    Session s(cfg, model);
    const int64_t steps = 1000;
    if (s.server()) {
      ps::Server server(s.cfg, s.roles, s.layout, s.comms.ps.get(), s.comms.role.get());
      const ps::ServerStats stats = server.serve();
      EXPECT_EQ(stats.pushes, 4 * steps);
      EXPECT_LT(stats.cpuSeconds, 0.9 * stats.wallSeconds) << "the server must not spin a core";
      continue;
    }
    ps::Worker worker(s.cfg, s.roles, s.layout, s.comms.ps.get(), model->parameters(), true);
    if (s.workerIndex() == 0) worker.sendInitial();
    worker.sync(0, false);
    torch::manual_seed(100 + s.workerIndex());
    for (int64_t step = 0; step < steps; ++step) {
      auto x = torch::randn({4, 8});
      auto y = torch::randint(0, 4, {4}, torch::kInt64);
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      worker.beginBackward(step, steps);
      loss.backward();
      worker.pushAndPull(step, steps);
      for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    }
    worker.sync(steps, false);
    // Same parameters on every worker after the final sync.
    auto flat = torch::cat({model->parameters()[0].reshape({-1}), model->parameters()[3]});
    auto all = torch::empty({s.comms.role.size(), flat.numel()});
    MPI_Allgather(flat.data_ptr(), static_cast<int>(flat.numel()), MPI_FLOAT, all.data_ptr(),
                  static_cast<int>(flat.numel()), MPI_FLOAT, s.comms.role.get());
    EXPECT_TRUE(torch::equal(all[0], all[s.comms.role.size() - 1]));
    EXPECT_TRUE(torch::isfinite(flat).all().item<bool>());
    worker.finish();
  }
}

}  // namespace
}  // namespace ringtrain
