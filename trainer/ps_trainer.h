// PsTrainer: training in parameter-server mode (distributed.mode: ps).
//
// Every rank of MPI_COMM_WORLD constructs one with the same config. ps.servers of them become
// servers (ps_server.h) holding a partition of the parameters (ps_layout.h) and its
// optimizer state; the others are workers that own a full model replica, read their shard
// of the data (ShardSampler over the workers only) and, each step, compute the gradient of
// their batch, push it and pull the updated parameters (ps_worker.h). ps.consistency picks
// bsp, asp or ssp (see ps_server.h).
//
// Sync points. At the end of every epoch, at checkpoint.every_steps, and at the end of the
// run, all workers meet at the same step through the servers: every push before it is
// applied and every worker pulls the same parameters. Evaluation then runs sharded over the
// workers exactly as in all-reduce mode, and checkpoints are taken there:
//   <run>/ps/server-<i>/checkpoints/step-N   written by server i first: its partition
//                                            ("partition" parameter) and optimizer state
//   <run>/checkpoints/step-N                 written by the first worker afterwards: the
//                                            gathered full model, so eval/export/predict
//                                            read it unchanged; its MANIFEST commits the
//                                            whole checkpoint
// Both use CheckpointStore (atomic rename, MANIFEST). Resuming reads the newest valid main
// checkpoint and the partitions of the same step; it needs the same world size and
// ps.servers (the layout fingerprint is checked).
//
// Progress lines and metrics.jsonl come from the first worker: the logged training loss is
// its own; the summary's samples/s counts the samples of every worker, and one "ps_server"
// record per server gives its CPU use (getrusage) over its serving time.
#pragma once

#include <memory>
#include <string>

#include "collectives/communicator.h"
#include "data/dataset.h"
#include "models/model.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/ps/layout.h"
#include "trainer/ps/protocol.h"
#include "trainer/ps/server.h"
#include "trainer/trainer.h"

namespace ringtrain {

class Loader;
class MetricsWriter;
class ProgressPrinter;
namespace ps {
class Worker;
}  // namespace ps

class PsTrainer {
 public:
  // Collective over MPI_COMM_WORLD. Throws ConfigError for an impossible role split or
  // partition (ps.servers = 0, ps.servers >= world size, too few parameter elements).
  // `commSlot`, when given, receives the workers' evaluation communicator: main() owns it
  // there so that an error never destroys a communicator whose thread may be blocked in MPI
  // before the job is aborted (see launch/commands.h).
  PsTrainer(Config cfg, RunOptions options, std::unique_ptr<Communicator>* commSlot = nullptr);
  // A user's own model and datasets (testSet may be null: no evaluation). Servers ignore
  // the datasets.
  PsTrainer(Config cfg, RunOptions options, ModelPtr model, DatasetPtr trainSet, DatasetPtr testSet,
            std::unique_ptr<Communicator>* commSlot = nullptr);
  ~PsTrainer();

  // Trains (workers) or serves (servers) until the run ends. Workers get the full summary;
  // servers get steps = optimizer updates they applied and wallSeconds.
  TrainSummary run();

  bool isServer() const { return roles_.isServer(rank_); }
  // Workers: the replica, holding the final parameters after run().
  Model& model() { return *model_; }
  const ps::Roles& roles() const { return roles_; }
  const ps::Layout& layout() const { return *layout_; }
  const std::string& runDir() const { return runDir_; }
  // Servers, after run().
  const ps::ServerStats& serverStats() const { return serverStats_; }

 private:
  void setUp();
  void checkSameLayoutEverywhere();
  std::string agreeOnResumeDir();
  void runServer(const std::string& resumeDir);
  TrainSummary runWorker(const std::string& resumeDir);
  void resumeWorker(const std::string& dir);
  double trainStep(ps::Worker& worker, Loader& loader);
  void syncPoint(ps::Worker& worker, bool checkpoint, bool evaluate, EvalResult* eval);
  void report(TrainSummary& summary, double wallSeconds);
  void log(const std::string& line);
  bool firstWorker() const { return roles_.workerIndex(rank_) == 0; }
  std::string partitionRoot(int server) const;

  Config cfg_;
  RunOptions options_;
  int rank_ = -1;
  int worldSize_ = 0;
  std::string runDir_;
  ModelPtr model_;
  DatasetPtr trainSet_;
  DatasetPtr testSet_;
  ps::Roles roles_;
  std::unique_ptr<ps::Layout> layout_;
  std::unique_ptr<ps::Comms> comms_;
  std::unique_ptr<Communicator> ownedComm_;  // the evaluation communicator, unless slotted
  std::unique_ptr<Communicator>* commSlot_;
  Communicator* workerComm_ = nullptr;                      // workers only: evaluation
  std::unique_ptr<torch::optim::Optimizer> stubOptimizer_;  // saved empty in main checkpoints
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<ProgressPrinter> progress_;
  TrainingState state_;
  ps::ServerStats serverStats_;
  int64_t stepsPerEpoch_ = 0;
  int64_t totalSteps_ = 0;
  double samplesTrained_ = 0.0;  // by this worker in this run
  std::chrono::milliseconds timeout_;
  Objective objective_;  // train.loss / train.metric, or RunOptions::objective
};

}  // namespace ringtrain
