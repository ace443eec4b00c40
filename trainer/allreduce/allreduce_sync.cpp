#include "trainer/allreduce/allreduce_sync.h"

#include <cmath>

#include "core/error.h"
#include "trainer/optim/optimizer.h"
#include "trainer/report/timeline.h"
#include "trainer/sync/fingerprint.h"

namespace ringtrain {

namespace {

// Which ranks' losses were not finite, for the message about a non-finite (averaged)
// gradient norm. Collective; every rank sees that norm alike and calls it.
std::string nonfiniteLossRanks(Communicator& comm, double localLoss,
                               std::chrono::milliseconds timeout) {
  auto mine = torch::tensor({localLoss}, torch::kFloat64);
  auto all = torch::empty({comm.size()}, torch::kFloat64);
  comm.allgather(mine, all)->wait(timeout);
  std::string ranks;
  for (int r = 0; r < comm.size(); ++r) {
    if (std::isfinite(all[r].item<double>())) continue;
    ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  }
  return ranks.empty() ? " (the loss was finite on every rank: a gradient overflowed)"
                       : " (non-finite loss on rank(s) " + ranks + ")";
}

}  // namespace

AllreduceSync::AllreduceSync(const Config& cfg, Communicator& comm,
                             std::vector<torch::Tensor> parameters,
                             torch::optim::Optimizer& optimizer, int64_t totalSteps,
                             std::function<void(const std::string&)> warn)
    : cfg_(cfg),
      comm_(comm),
      parameters_(std::move(parameters)),
      optimizer_(optimizer),
      totalSteps_(totalSteps),
      warn_(std::move(warn)),
      timeout_(cfg.distributed.timeout()) {
  GradSyncOptions options;
  options.bucketMb = cfg.distributed.bucket_mb;
  options.overlap = cfg.distributed.overlap;
  options.compression = parseGradCompression(cfg.distributed.compression);
  options.timeout = timeout_;
  options.reduceScatter = cfg.distributed.zero == 1;
  gradSync_ = std::make_unique<GradientSynchronizer>(comm_, parameters_, options);
  if (options.reduceScatter) {
    zero_ =
        std::make_unique<ShardedOptimizer>(cfg.optimizer, comm_, parameters_, *gradSync_, timeout_);
  }
}

void AllreduceSync::prepareBackward(int64_t step, bool lastMicroBatch) {
  // (Before backward: its hooks launch buckets, whose launch times the timeline needs.)
  gradSync_->recordTimings(timeline_ && timeline_->recording());
  gradSync_->prepareBackward(step, lastMicroBatch);
}

bool AllreduceSync::finishStep(int64_t step, double localLoss, StepPhases& phases) {
  const bool tracing = timeline_ && timeline_->recording();
  {
    const Timeline::Scope span(timeline_, "sync wait");
    timed(phases.syncWait, [&] {
      if (comm_.size() > 1) gradSync_->synchronize(step);
    });
  }
  if (tracing) traceBuckets();
  const Timeline::Scope span(timeline_, "optimizer");
  return timed(phases.update, [&] { return applyUpdate(step, localLoss); });
}

void AllreduceSync::traceBuckets() {
  const std::string op = zero_ ? "reduce-scatter" : "all-reduce";
  for (const BucketTiming& t : gradSync_->lastTimings()) {
    const std::string name = "bucket " + std::to_string(t.bucket + 1) + " " + op;
    // Launch to completion as the backend saw it; without its times, to the waiter's return.
    const auto completed = t.ran ? t.ran->completed : t.waited;
    Timeline::Args args = {{"bucket", static_cast<double>(t.bucket + 1)},
                           {"bytes", static_cast<double>(t.bytes)},
                           {"launched_by_backward_hook", t.fromHook ? 1.0 : 0.0}};
    if (t.ran) {
      const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
      args.push_back({"queued_ms", ms(t.ran->started - t.launched)});
      args.push_back({"running_ms", ms(t.ran->completed - t.ran->started)});
      timeline_->span(name, Timeline::Track::Communication, t.ran->started, t.ran->completed, args);
    }
    timeline_->asyncSpan(name, static_cast<int64_t>(t.bucket), t.launched, completed, args);
  }
}

double AllreduceSync::clippedGradientNorm() {
  const double maxNorm = cfg_.train.grad_clip_norm;
  if (zero_) {
    zero_->loadGradients();
    const double norm = zero_->gradientNorm();
    if (maxNorm > 0.0) zero_->clipGradients(maxNorm, norm);
    return norm;
  }
  if (maxNorm > 0.0) return torch::nn::utils::clip_grad_norm_(parameters_, maxNorm);
  std::vector<torch::Tensor> norms;
  for (const auto& p : parameters_) {
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  }
  return norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
}

bool AllreduceSync::applyUpdate(int64_t step, double localLoss) {
  const double norm = clippedGradientNorm();
  if (!std::isfinite(norm)) {
    // The gradients are already averaged, so every rank sees the same norm and decides alike.
    const std::string what = "non-finite gradient norm at step " + std::to_string(step) +
                             nonfiniteLossRanks(comm_, localLoss, timeout_);
    if (cfg_.train.on_nonfinite == "skip") {
      warn_(what + "; skipping the update (train.on_nonfinite: skip)");
      zeroGradsInPlace(optimizer_);
      return false;
    }
    throw TrainingError(what,
                        "lower optimizer.lr, set train.grad_clip_norm, or set "
                        "train.on_nonfinite: skip",
                        comm_.rank());
  }
  const double lr = scheduledLearningRate(cfg_.schedule, cfg_.optimizer.lr, step, totalSteps_);
  if (zero_) {
    zero_->importState(optimizer_);  // a checkpoint's state, loaded or just saved
    zero_->step(lr);
  } else {
    setLearningRate(optimizer_, lr);
    optimizer_.step();
  }
  zeroGradsInPlace(optimizer_);
  return true;
}

void AllreduceSync::meet(int64_t, bool checkpoint) {
  if (zero_ && checkpoint) zero_->exportState(optimizer_);
}

void AllreduceSync::finishRun(RunReport& report) {
  const double mine =
      static_cast<double>(zero_ ? zero_->stateBytes() : optimizerStateBytes(optimizer_));
  auto local = torch::tensor({mine}, torch::kFloat64);
  auto all = torch::empty({comm_.size()}, torch::kFloat64);
  comm_.allgather(local, all)->wait(timeout_);
  const double most = all.max().item<double>();
  report.summaryFields.emplace_back("optimizer_state_bytes", most);
  report.lines.push_back(
      "optimizer state: " + std::to_string(static_cast<int64_t>(most)) +
      " bytes on the fullest rank, " +
      std::to_string(static_cast<int64_t>(all.sum().item<double>())) + " in all" +
      (zero_ ? " (ZeRO-1: sharded over " + std::to_string(comm_.size()) + " ranks)" : ""));
}

std::vector<std::string> AllreduceSync::fingerprint(const torch::nn::Module& model) const {
  return syncFingerprint(model, gradSync_->layout());
}

std::string AllreduceSync::describe() const {
  return std::to_string(comm_.size()) + " rank(s), backend " + comm_.allreducePath() + ", " +
         std::to_string(gradSync_->layout().size()) + " gradient bucket(s)" +
         (zero_ ? ", ZeRO-1 optimizer state" : "");
}

}  // namespace ringtrain
