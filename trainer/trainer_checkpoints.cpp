// The Trainer's side of fault tolerance: the run directory's lock, resuming from a checkpoint
// (and refusing one that does not fit), writing checkpoints with a deadline-bounded
// hand-shake, and the config and model fingerprint checks across ranks. The training loop itself is
// in trainer.cpp.
#include <filesystem>

#include "core/error.h"
#include "core/faults.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/resume.h"
#include "trainer/checkpoint/run_directory.h"
#include "trainer/config/config_schema.h"
#include "trainer/deadlines.h"
#include "trainer/optim/optimizer.h"
#include "trainer/report/metrics.h"
#include "trainer/report/prometheus.h"
#include "trainer/report/tensorboard.h"
#include "trainer/report/timeline.h"
#include "trainer/sync/fingerprint.h"
#include "trainer/sync/root_decision.h"
#include "trainer/sync/step_sync.h"
#include "trainer/trainer.h"

#include "trainer/host/stop_signals.h"

namespace fs = std::filesystem;

namespace ringtrain {

// Every rank must build the same model, or the bucketed all-reduce would pair up
// gradients of different shapes (or hang). Compare what is about to be synchronised, in
// order, before the first collective on it and every distributed.fingerprint_every steps.
void Trainer::checkSameModelEverywhere(const std::string& when, std::chrono::milliseconds timeout) {
  withTimeoutContext("model fingerprint check at " + when, [&] {
    checkFingerprintsMatch(sync_->fingerprint(*model_), replicas(), timeout, when);
  });
}

// Ranks that read different configs (a per-host copy of the file, an MPMD launch with other
// --set options) would train silently wrong with another learning rate or seed, or issue
// different collectives with another batch size or log interval: compare them first.
void Trainer::checkSameConfigEverywhere() {
  const auto mismatch = withTimeoutContext("config comparison at start-up", [&] {
    return findLineMismatch(cfg_.agreedLines(), "keys", comm_, startupTimeout(timeout_));
  });
  if (!mismatch) return;
  const std::string& named =
      mismatch->reference.rfind("nothing", 0) == 0 ? mismatch->other : mismatch->reference;
  throw ConfigError("the ranks' configs differ: rank " + std::to_string(mismatch->rank) +
                        " differs from rank 0 first at " + named.substr(0, named.find(':')) +
                        ": rank 0 has " + mismatch->reference + ", rank " +
                        std::to_string(mismatch->rank) + " has " + mismatch->other,
                    "every rank must read the same config file with the same --set options "
                    "(only data.dir, data.prefetch, train.threads and train.retain_host_memory "
                    "may differ per rank)",
                    comm_.rank());
}

void Trainer::claimRunDirectory() {
  if (options_.overwrite && !options_.resume.empty()) {
    throw UsageError("--overwrite moves an earlier run aside and --resume continues it",
                     "pass only one of them", comm_.rank());
  }
  withTimeoutContext("taking the run directory", [&] {
    decideOnRankZero(comm_, startupTimeout(timeout_), [&] {
      if (options_.dryRun) {
        // Nothing is written or locked: only say whether the real run would be refused.
        if (options_.resume.empty() && !options_.overwrite) {
          prepareFreshRunDirectory(runDir_, false);
        }
        return;
      }
      runLock_ = std::make_unique<RunDirectoryLock>(runDir_);
      if (!runLock_->warning().empty()) runDirNotes_.push_back("warning: " + runLock_->warning());
      if (!options_.resume.empty()) return;
      if (const auto aside = prepareFreshRunDirectory(runDir_, options_.overwrite)) {
        runDirNotes_.push_back("--overwrite: moved the earlier run in " + runDir_ + " to " +
                               *aside);
      }
    });
  });
}

void Trainer::refuseFinishedRunWithAnotherConfig() {
  std::vector<std::string> differences;
  for (const std::string& d : configDifferences(readCheckpointConfig(*resumeDir_), cfg_.toYaml())) {
    const std::string key = d.substr(0, d.find(':'));
    const auto dot = key.find('.');
    const ConfigKey* k =
        dot == std::string::npos ? nullptr : findConfigKey(key.substr(0, dot), key.substr(dot + 1));
    if (!k || !k->perRank) differences.push_back(d);  // (a host's own settings change nothing)
  }
  const std::string finished =
      "the run in " + runDir_ + " finished at step " + std::to_string(resumeState_->step);
  if (differences.empty()) {
    log(finished + ": nothing is left to train");
    return;
  }
  const std::string more =
      differences.size() > 1 ? " and " + std::to_string(differences.size() - 1) + " more" : "";
  throw RunDirError(finished + ", and this config differs from its (" + differences[0] + more +
                        "): resuming it would train nothing with the new config",
                    "train the new config into another --run-dir, or start it fresh with "
                    "--overwrite (which moves the finished run aside); to train the finished "
                    "run further, raise train.epochs or train.max_steps",
                    comm_.rank());
}

void Trainer::refuseUnfitCheckpoint(const std::string& dir) {
  const TrainingState& saved = *resumeState_;
  // All-reduce replicas resume at any world size (elastic resume); the parameter-server mode
  // partitions optimizer state and data by its roles, so it resumes only as it was.
  std::vector<std::string> differences;
  if (saved.worldSize != comm_.size() && cluster_) {
    differences.push_back("it was written by " + std::to_string(saved.worldSize) +
                          " ranks, this job has " + std::to_string(comm_.size()) +
                          ", and distributed.mode: ps resumes only at the world size it was "
                          "written with (elastic resume is for distributed.mode: allreduce)");
  }
  if (saved.modelFingerprint != state_.modelFingerprint) {
    const auto what = describeModelMismatch(dir, *model_);
    differences.push_back(
        "it holds model '" + saved.modelName + "' and the config builds '" + cfg_.model.name +
        "', which differ: " + (what.empty() ? "parameter names, shapes or dtypes" : what));
  }
  if (!differences.empty()) {
    std::string message = "cannot resume from " + dir + ": " + differences[0];
    for (size_t i = 1; i < differences.size(); ++i) message += "; " + differences[i];
    throw CheckpointError(message,
                          cluster_ ? "resume with the model config and rank count (mpirun -np " +
                                         std::to_string(saved.worldSize) +
                                         ", ps.servers) the checkpoint was written with, or "
                                         "start a new run directory"
                                   : "resume with the model config the checkpoint was written "
                                     "with, or start a new run directory",
                          comm_.rank());
  }
}

void Trainer::chooseResume() {
  resumeDir_ = withTimeoutContext("choosing the checkpoint to resume from", [&] {
    return agreeOnResume(
        comm_, runDir_, options_.resume, [this](const std::string& m) { log(m); },
        startupTimeout(timeout_));
  });
  if (resumeDir_) {
    resumeState_ = readTrainingState(*resumeDir_);
    refuseUnfitCheckpoint(*resumeDir_);
  }
  if (isParameterServer()) return;
  microBatchSamples_ = cfg_.data.batch_size * replicas().size();
  if (!resumeDir_) return;
  const TrainingState& saved = *resumeState_;
  const auto batch =
      resumedMicroBatch(*resumeDir_, saved, cfg_.data.batch_size, replicas().size(), comm_.rank());
  const int64_t ranks = replicas().size();
  if (batch.changed) {
    log("data.batch_size changed at the start of epoch " + std::to_string(saved.epoch) +
        ": the global micro-batch is now " + std::to_string(batch.microBatchSamples) +
        " samples; optimizer.lr is as configured (scale it with the batch if you want the "
        "linear scaling rule)");
  } else if (batch.microBatchSamples != microBatchSamples_ || saved.worldSize != ranks) {
    const int64_t low = batch.microBatchSamples / ranks;
    const bool even = batch.microBatchSamples % ranks == 0;
    log("elastic resume: written by " + std::to_string(saved.worldSize) + " ranks, resumed on " +
        std::to_string(ranks) + "; the global micro-batch stays " +
        std::to_string(batch.microBatchSamples) + " samples, " +
        (even ? std::to_string(low) + " per rank"
              : std::to_string(low) + " or " + std::to_string(low + 1) +
                    " per rank, each rank's gradient weighted by its share"));
  }
  microBatchSamples_ = batch.microBatchSamples;
}

ShardSampler Trainer::trainSampler() const {
  return ShardSampler::withGlobalBatch(trainSet_->size(), microBatchSamples_, replicas_->rank(),
                                       replicas_->size(), cfg_.train.seed, cfg_.data.shuffle);
}

void Trainer::resumeFrom(const std::string& dir) {
  const TrainingState saved = *resumeState_;
  if (replicas().rank() == 0) {
    for (const auto& d : configDifferences(readCheckpointConfig(dir), cfg_.toYaml())) {
      log("warning: config differs from the checkpoint's: " + d);
    }
  }
  // (Under ps the parameters loaded here are replaced by the servers' at the start, which
  // are the same: the servers loaded their partitions of this step.)
  loadCheckpoint(dir, *model_, optimizer_.get(), true);
  const auto fingerprint = state_.modelFingerprint;
  const auto configHash = state_.configHash;
  const auto worldSize = state_.worldSize;
  state_ = saved;
  state_.worldSize = worldSize;  // what the next checkpoint is written by
  state_.microBatchSamples = microBatchSamples_;
  state_.configHash = configHash;
  state_.modelFingerprint = fingerprint;
  state_.totalSteps = totalSteps_;
  log("resumed from " + dir + " at step " + std::to_string(state_.step));
}

void Trainer::saveCheckpoint() {
  if (!cfg_.checkpoint.enabled) return;
  const Timeline::Scope span(timeline_.get(), "checkpoint");
  processFaults().trigger(FaultPoint::BeforeCheckpointSync, comm_.rank(), state_.step);
  // The replicas are identical where they meet, so rank 0's copy is the state of the job
  // (under ps, with the partitions the servers saved when the replicas met). The others wait
  // in the hand-shake below (under the collective deadline, unlike a bare barrier) and
  // learn from it whether the write worked.
  std::exception_ptr failure;
  if (replicas().rank() == 0) {
    state_.learningRate = scheduledLearningRate(cfg_.schedule, cfg_.optimizer.lr,
                                                std::max<int64_t>(state_.step - 1, 0), totalSteps_);
    try {
      checkpoints_->save(*model_, *optimizer_, state_, cfg_.toYaml(),
                         static_cast<int>(cfg_.checkpoint.keep_last),
                         [this](const std::string& m) { log("warning: " + m); });
    } catch (const CheckpointError&) {
      failure = std::current_exception();
    }
  }
  auto status = torch::tensor({failure ? 1.0 : 0.0}, torch::kFloat64);
  replicas()
      .allreduce(status, "checkpoint hand-shake, step " + std::to_string(state_.step))
      ->wait(timeout_);
  if (failure) std::rethrow_exception(failure);
  checkpointedStep_ = state_.step;
  if (prometheus_ && status.item<double>() == 0.0) prometheus_->checkpointWritten();
  if (status.item<double>() > 0.0) {
    throw CheckpointError("rank 0 could not write the checkpoint of step " +
                              std::to_string(state_.step) + " (its line says why)",
                          "", comm_.rank());
  }
}

// Records of steps after the checkpoint came from the attempt that died; they are about to
// be written again.
void Trainer::rollBackMetrics() {
  if (replicas().rank() != 0) return;
  const auto path = (fs::path(runDir_) / "metrics.jsonl").string();
  metrics_.reset();
  discardMetricsAfter(path, state_.step);
  openMetrics();
  // (Earlier event files hold those steps too: TensorBoard drops the steps from this mark
  // on, and the records of the resumed step itself stay, as in metrics.jsonl.)
  if (tensorboard_) tensorboard_->restartAt(state_.step + 1);
}

void Trainer::stopForSignal(const std::string& signal) {
  stoppedBy_ = signal;
  const bool save = cfg_.checkpoint.enabled && checkpointedStep_ != state_.step;
  if (save) {
    sync_->meet(state_.step, true);
    saveCheckpoint();
  }
  if (replicas().rank() != 0) return;
  log("stopping after step " + std::to_string(state_.step) + " for " + signal + ": " +
      (cfg_.checkpoint.enabled ? "checkpoint of step " + std::to_string(state_.step) +
                                     " written; continue with --resume auto (exit code " +
                                     std::to_string(stopExitCode(signal)) + ")"
                               : "checkpoint.enabled is false, so nothing was saved"));
}

}  // namespace ringtrain
