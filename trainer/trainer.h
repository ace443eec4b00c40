// The Trainer: data-parallel training of one model replica per rank, in both modes.
//
// One optimizer step reads as: trainStep (forward + backward on this rank's shard of the
// global batch, possibly over several micro-batches) -> StepSync::finishStep, the strategy
// that turns every replica's gradients into the next parameters:
//   distributed.mode: allreduce  trainer/allreduce/allreduce_sync.h: average gradients across
//                                ranks, clip, schedule, optimizer step on every rank;
//   distributed.mode: ps         trainer/ps/push_pull_sync.h: push gradients to the
//                                parameter servers, pull the parameters back. ps.servers
//                                ranks become servers and run ps::serve instead of the loop
//                                (trainer/ps/serve.h); the others are the replicas.
// After each epoch the replicas meet (StepSync::meet), evalStep runs on each replica's slice
// of the test set and the results are reduced; saveCheckpoint writes a crash-safe checkpoint
// from the replicas' rank 0. Which checkpoint a run resumes from is agreed by every rank
// before the roles split.
#pragma once

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "data/dataset.h"
#include "data/sharding.h"
#include "models/model.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/evaluate.h"
#include "trainer/ps/server_stats.h"

namespace ringtrain {

class Loader;
class MetricsWriter;
class TensorBoardWriter;
class PrometheusExporter;
class Timeline;
class ProgressPrinter;
class RunDirectoryLock;
class StepSync;
struct StepPhases;
struct Straggler;
struct SlowLink;
namespace ps {
class Cluster;
}  // namespace ps

struct RunOptions {
  std::string runDir;  // empty: runs/<train.run_name>
  std::string resume;  // empty: fresh run; "auto": newest valid checkpoint in runDir; or a dir
  bool quiet = false;  // no progress output (tests)
  // Your own loss (and whether to report accuracy) instead of train.loss / train.metric.
  std::optional<Objective> objective;
  // Builds everything a run needs (model, data, shards, the checkpoint it would resume from,
  // the gradient buckets), prints what it found, and trains nothing: run() returns at once
  // and nothing is written to the run directory.
  bool dryRun = false;
  // A fresh run (no resume) into a directory that holds an earlier run moves that run into
  // <runDir>.replaced-<UTC time> instead of refusing to start (never deletes it).
  bool overwrite = false;
};

struct TrainSummary {
  int64_t steps = 0;
  double bestAccuracy = 0.0;
  EvalResult finalEval;
  double wallSeconds = 0.0;
  double samplesPerSecond = 0.0;
  std::string runDir;
  // Parameter servers only (then steps = the optimizer updates this server applied).
  std::optional<ps::ServerStats> serverStats;
  // The scheduler's signal(s) that ended the run early at a checkpoint ("SIGTERM"), or "".
  std::string stoppedBy;
};

class Trainer {
 public:
  // Model and datasets from the registries named in the config. `comm` spans every rank of
  // the job; with distributed.mode: ps it must be MPI_COMM_WORLD's (the roles split it).
  // Collective over `comm`.
  Trainer(Config cfg, Communicator& comm, RunOptions options);
  // A user's own model and datasets (testSet may be null: no evaluation). Parameter servers
  // ignore the datasets.
  Trainer(Config cfg, Communicator& comm, RunOptions options, ModelPtr model, DatasetPtr trainSet,
          DatasetPtr testSet);
  ~Trainer();

  // Trains (replicas) or serves (parameter servers) until the run ends. Collective.
  TrainSummary run();
  // Evaluates the current model on the whole test set, sharded across the replicas
  // (nothing on a parameter server).
  EvalResult evaluate();

  // distributed.mode: ps and this rank serves: it holds no replica that trains.
  bool isParameterServer() const;
  Model& model() { return *model_; }
  const Config& config() const { return cfg_; }
  const std::string& runDir() const { return runDir_; }

 private:
  // distributed.mode: ps: checks what the mode needs, then splits the world into roles.
  void joinCluster();
  void setUp();
  Communicator& replicas() { return *replicas_; }
  // Parameter servers: their part of run().
  TrainSummary serve(const std::optional<std::string>& resumeDir);
  // RunOptions::dryRun's run(): what the run would do, printed by the replicas' rank 0.
  TrainSummary describeDryRun();
  // Compares the model fingerprint across ranks (see trainer/sync/fingerprint.h); `when` names
  // the moment in the error message.
  void checkSameModelEverywhere(const std::string& when, std::chrono::milliseconds timeout);
  // Compares the resolved config (Config::agreedLines) across every rank of the job before
  // anything depends on it; a mismatch is a ConfigError on every rank naming the first key.
  void checkSameConfigEverywhere();
  // Collective: rank 0 locks the run directory for the job (run_directory.h) and, for a
  // fresh run, refuses (or with RunOptions::overwrite moves aside) an earlier run's files.
  void claimRunDirectory();
  // A resumed run with nothing left to train: fine when the config is the checkpoint's (a
  // finished run started again), refused when it differs, since the new config would train
  // nothing while the run reports success.
  void refuseFinishedRunWithAnotherConfig();
  // Drops the records of metrics.jsonl after the step resumed at (replicas' rank 0).
  void rollBackMetrics();
  // Opens metrics.jsonl (replicas' rank 0) with the TensorBoard and Prometheus sinks.
  void openMetrics();
  // Refuses, saying what differs, a checkpoint of another model or world size (every rank,
  // servers too, so that each one's path ends with the same line).
  void refuseUnfitCheckpoint(const std::string& dir);
  // Loads the checkpoint into the replica and the loop's state.
  void resumeFrom(const std::string& dir);
  // Collective over every rank: agrees on the checkpoint to resume from (resumeDir_),
  // refuses one that does not fit, and sets the global micro-batch (elastic resume).
  void chooseResume();
  // This rank's share of every step's samples.
  ShardSampler trainSampler() const;
  // One micro-batch: forward, loss, backward of loss * lossScale; returns the loss.
  double forwardBackward(const Batch& batch, double lossScale);
  // The micro-batches of one optimizer step (forward and backward); returns the step's loss.
  double trainStep(Loader& loader, StepPhases& phases);
  struct LogInterval;
  void afterStep(LogInterval& interval, int64_t globalBatch, int64_t microStepsPerEpoch);
  EvalResult endEpoch(int64_t microStepsPerEpoch);
  TrainSummary finish(double wallSeconds, int64_t stepsRun, int64_t globalBatch,
                      const EvalResult& lastEval);
  EvalResult evalStep();
  // The train record and progress line of the `steps` steps that took `seconds` here.
  // Collective: gathers every rank's loss and step phases.
  void logInterval(int64_t steps, double loss, const StepPhases& phases, double seconds,
                   int64_t globalBatch);
  // Warns (rank 0) when the slowest rank's work reaches train.straggler_ratio x the others'.
  void warnOfStraggler(const Straggler& slowest, int64_t steps);
  // Warns (rank 0) when one ring link paces the ring (see findSlowLink); `stepMs` is the
  // interval's mean step time.
  void warnOfSlowLink(const SlowLink& link, int64_t steps, double stepMs);
  static constexpr double kSlowLinkShareOfStep = 0.1;
  void saveCheckpoint();
  // Ends the run at this step for a scheduler's signal: a checkpoint (unless this step has
  // one) and the line that says how to continue.
  void stopForSignal(const std::string& signal);
  void checkReplicasIdentical();
  void log(const std::string& line);

  Config cfg_;
  Communicator& comm_;  // every rank of the job: errors and fault points name its ranks
  RunOptions options_;
  std::string runDir_;
  ModelPtr model_;
  DatasetPtr trainSet_;
  DatasetPtr testSet_;
  std::unique_ptr<ps::Cluster> cluster_;  // distributed.mode: ps
  Communicator* replicas_ = nullptr;      // the ranks holding replicas (none on a server)
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<StepSync> sync_;  // turns the replicas' gradients into the update
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // metrics.tensorboard, on rank 0
  std::unique_ptr<PrometheusExporter> prometheus_;  // metrics.prometheus_*, on rank 0
  std::unique_ptr<Timeline> timeline_;              // train.timeline, on every replica
  std::unique_ptr<ProgressPrinter> progress_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  std::unique_ptr<RunDirectoryLock> runLock_;  // held by rank 0 until run() returns
  std::vector<std::string> runDirNotes_;       // what claimRunDirectory did, for the log
  TrainingState state_;
  int64_t totalSteps_ = 0;
  int64_t stepsPerEpoch_ = 0;                 // optimizer steps
  int64_t microBatchSamples_ = 0;             // samples of one sampler step over all replicas
  std::optional<std::string> resumeDir_;      // the checkpoint this run resumes from
  std::optional<TrainingState> resumeState_;  // its state.yaml, read once
  std::ofstream sampleLog_;                   // train.sample_log's file of this rank
  int warnedStraggler_ = -1;                  // the straggler warned of and still slow, or -1
  int warnedLinkFrom_ = -1;                   // the sender of the slow link warned of, or -1
  LinkWaits linkWaitsLogged_;                 // replicas().linkWaits() at the last log interval
  bool linkWaitsWarmedUp_ = false;            // false in a run's first log interval
  std::vector<std::string> hostOfRank_;       // every rank's host, servers too
  int64_t checkpointedStep_ = -1;             // the step of the last checkpoint this run wrote
  std::string stoppedBy_;                     // the signal(s) the run stopped for, or ""
  std::chrono::milliseconds timeout_;
  Objective objective_;  // train.loss / train.metric, or RunOptions::objective
};

}  // namespace ringtrain
