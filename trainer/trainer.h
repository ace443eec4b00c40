// The Trainer: data-parallel training of one model replica per rank.
//
// One optimizer step reads as: trainStep (forward + backward on this rank's shard of the
// global batch, possibly over several micro-batches) -> StepSync::finishStep (for all-reduce,
// trainer/allreduce/allreduce_sync.h: average gradients across ranks, clip, schedule,
// optimizer step). After each epoch, evalStep runs on this
// rank's slice of the test set and the results are reduced; saveCheckpoint writes a
// crash-safe checkpoint from rank 0.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "collectives/communicator.h"
#include "data/dataset.h"
#include "models/model.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/evaluate.h"

namespace ringtrain {

class Loader;
class MetricsWriter;
class ProgressPrinter;
class StepSync;
struct StepPhases;
struct Straggler;

struct RunOptions {
  std::string runDir;  // empty: runs/<train.run_name>
  std::string resume;  // empty: fresh run; "auto": newest valid checkpoint in runDir; or a dir
  bool quiet = false;  // no progress output (tests)
  // Your own loss (and whether to report accuracy) instead of train.loss / train.metric.
  std::optional<Objective> objective;
};

struct TrainSummary {
  int64_t steps = 0;
  double bestAccuracy = 0.0;
  EvalResult finalEval;
  double wallSeconds = 0.0;
  double samplesPerSecond = 0.0;
  std::string runDir;
};

class Trainer {
 public:
  // Model and datasets from the registries named in the config.
  Trainer(Config cfg, Communicator& comm, RunOptions options);
  // A user's own model and datasets (testSet may be null: no evaluation).
  Trainer(Config cfg, Communicator& comm, RunOptions options, ModelPtr model, DatasetPtr trainSet,
          DatasetPtr testSet);
  ~Trainer();

  TrainSummary run();
  // Evaluates the current model on the whole test set, sharded across ranks.
  EvalResult evaluate();

  Model& model() { return *model_; }
  const Config& config() const { return cfg_; }
  const std::string& runDir() const { return runDir_; }

 private:
  void setUp();
  // Compares the model fingerprint across ranks (see trainer/sync/fingerprint.h); `when` names
  // the moment in the error message.
  void checkSameModelEverywhere(const std::string& when, std::chrono::milliseconds timeout);
  // --resume: picks the checkpoint (all ranks must agree), loads it, rolls back metrics.
  void resumeIfAsked();
  // Refuses, saying what differs, a checkpoint of another model or world size.
  void resumeFrom(const std::string& dir);
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
  void saveCheckpoint();
  void checkReplicasIdentical();
  void log(const std::string& line);

  Config cfg_;
  Communicator& comm_;
  RunOptions options_;
  std::string runDir_;
  ModelPtr model_;
  DatasetPtr trainSet_;
  DatasetPtr testSet_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<StepSync> sync_;  // averages gradients and applies the update
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<ProgressPrinter> progress_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  TrainingState state_;
  int64_t totalSteps_ = 0;
  int64_t stepsPerEpoch_ = 0;  // optimizer steps
  int warnedStraggler_ = -1;   // the straggler warned of and still slow, or -1
  std::chrono::milliseconds timeout_;
  Objective objective_;  // train.loss / train.metric, or RunOptions::objective
};

}  // namespace ringtrain
