// The Trainer's train records: each log interval gathers every rank's step phases and ring
// waits in one collective, writes the means, and warns of a straggling rank or a slow link.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "models/registry.h"
#include "trainer/deadlines.h"
#include "trainer/optim/optimizer.h"
#include "trainer/report/metrics.h"
#include "trainer/report/prometheus.h"
#include "trainer/report/tensorboard.h"
#include "trainer/trainer.h"

namespace ringtrain {

void Trainer::logInterval(int64_t steps, double loss, const StepPhases& phases, double seconds,
                          int64_t globalBatch) {
  // Every rank's totals in the interval's one collective: summed for the means over ranks
  // that the record reports, and compared to find the slowest rank and the slowest link.
  enum {
    kLoss,
    kData,
    kForwardBackward,
    kSyncWait,
    kUpdate,
    kSeconds,
    kSendPeer,
    kSendWait,
    kRecvPeer,
    kRecvWait,
    kFields
  };
  const LinkWaits waits = replicas().linkWaits();
  const auto mine = torch::tensor(
      {loss, phases.data, phases.forwardBackward, phases.syncWait, phases.update, seconds,
       static_cast<double>(waits.sendPeer), waits.sendWait - linkWaitsLogged_.sendWait,
       static_cast<double>(waits.recvPeer), waits.recvWait - linkWaitsLogged_.recvWait},
      torch::kFloat64);
  linkWaitsLogged_ = waits;
  const int ranks = replicas().size();
  auto gathered = torch::empty({ranks * kFields}, torch::kFloat64);
  withTimeoutContext("metrics of step " + std::to_string(state_.step),
                     [&] { replicas().allgather(mine, gathered)->wait(timeout_); });
  const auto perRank = gathered.view({ranks, kFields});
  const auto totals = perRank.sum(0);
  const double perStep = 1.0 / static_cast<double>(steps * ranks);
  const double meanLoss = totals[kLoss].item<double>() * perStep;
  const double msPerStep = 1000.0 * perStep;
  std::vector<std::pair<std::string, double>> extra{
      {"data_ms", totals[kData].item<double>() * msPerStep},
      {"forward_backward_ms", totals[kForwardBackward].item<double>() * msPerStep},
      {"sync_wait_ms", totals[kSyncWait].item<double>() * msPerStep},
      {"update_ms", totals[kUpdate].item<double>() * msPerStep}};
  if (ranks > 1) {
    const auto workSeconds = perRank.select(1, kSeconds) - perRank.select(1, kSyncWait);
    std::vector<double> workMs;
    std::vector<LinkWaits> linkMs;
    const double toMsPerStep = 1000.0 / static_cast<double>(steps);
    for (int r = 0; r < ranks; ++r) {
      const auto row = perRank[r];
      workMs.push_back(workSeconds[r].item<double>() * toMsPerStep);
      linkMs.push_back({static_cast<int>(row[kSendPeer].item<double>()),
                        row[kSendWait].item<double>() * toMsPerStep,
                        static_cast<int>(row[kRecvPeer].item<double>()),
                        row[kRecvWait].item<double>() * toMsPerStep});
    }
    const Straggler slowest = findStraggler(workMs);
    extra.emplace_back("slowest_rank", slowest.rank);
    extra.emplace_back("slowest_rank_lead_ms", slowest.leadMs());
    warnOfStraggler(slowest, steps);
    if (const auto link = findSlowLink(linkMs)) {
      extra.emplace_back("slowest_link_rank", link->from);
      extra.emplace_back("slowest_link_wait_ms", link->waitMs);
      // Not from the first interval: Open MPI opens its TCP connections at a link's first
      // message, and that wait says nothing of the link's speed.
      if (linkWaitsWarmedUp_) {
        warnOfSlowLink(*link, steps, totals[kSeconds].item<double>() * msPerStep);
      }
      linkWaitsWarmedUp_ = true;
    }
  }
  if (replicas().rank() != 0) return;
  const double samplesPerSecond = steps * globalBatch / std::max(seconds, 1e-9);
  const double lr =
      scheduledLearningRate(cfg_.schedule, cfg_.optimizer.lr, state_.step - 1, totalSteps_);
  metrics_->train(state_.step, state_.epoch, meanLoss, lr, samplesPerSecond, extra);
  const double eta = (totalSteps_ - state_.step) * globalBatch / samplesPerSecond;
  if (!options_.quiet) {
    progress_->update(state_.epoch, cfg_.train.epochs, state_.step, totalSteps_, meanLoss,
                      samplesPerSecond, eta);
  }
}

void Trainer::warnOfStraggler(const Straggler& slowest, int64_t steps) {
  const double threshold = cfg_.train.straggler_ratio;
  if (threshold <= 0 || slowest.ratio() < threshold) {
    warnedStraggler_ = -1;  // a later straggler, even the same rank, is news again
    return;
  }
  if (slowest.rank == warnedStraggler_) return;  // said at the interval it started
  warnedStraggler_ = slowest.rank;
  char line[400];
  std::snprintf(line, sizeof line,
                "warning: rank %d is a straggler: over steps %lld-%lld its steps took %.2fx as "
                "long as the other ranks' (%.1f vs %.1f ms of work per step), and every rank "
                "waits for it; check its node for other load, CPU binding (mpirun --bind-to "
                "core) or a slower CPU (train.straggler_ratio: 0 silences this)",
                slowest.rank, static_cast<long long>(state_.step - steps + 1),
                static_cast<long long>(state_.step), slowest.ratio(), slowest.workMs,
                slowest.othersMedianMs);
  log(line);
}

void Trainer::warnOfSlowLink(const SlowLink& link, int64_t steps, double stepMs) {
  // Named when it is train.straggler_ratio x slower than the ring's other links and its
  // waits are a real part of the step (a fast ring's waits are noise).
  const double threshold = cfg_.train.straggler_ratio;
  if (threshold <= 0 || link.ratio() < threshold || link.waitMs < kSlowLinkShareOfStep * stepMs) {
    warnedLinkFrom_ = -1;
    return;
  }
  if (link.from == warnedLinkFrom_) return;
  warnedLinkFrom_ = link.from;
  auto rankOnHost = [&](int rank) {
    std::string name = "rank " + std::to_string(rank);
    // Link peers are replicas' ranks; hosts are known by the job's ranks (the same in
    // all-reduce mode, the only one with a ring).
    if (replicas().size() == comm_.size() && rank < static_cast<int>(hostOfRank_.size())) {
      name += " (host " + hostOfRank_[static_cast<size_t>(rank)] + ")";
    }
    return name;
  };
  char line[600];
  std::snprintf(line, sizeof line,
                "warning: the link from %s to %s is the ring's slowest: over steps %lld-%lld "
                "its ends waited on it %.1f ms per step (the ring's other links %.1f ms, the "
                "step %.1f ms), and the whole ring runs at its speed; check that link's rate, "
                "errors and other traffic (train.straggler_ratio: 0 silences this)",
                rankOnHost(link.from).c_str(), rankOnHost(link.to).c_str(),
                static_cast<long long>(state_.step - steps + 1),
                static_cast<long long>(state_.step), link.waitMs, link.othersMedianMs, stepMs);
  log(line);
}

void Trainer::openMetrics() {
  std::vector<MetricsWriter::Sink> sinks;
  if (tensorboard_) {
    sinks.emplace_back([writer = tensorboard_.get()](const std::string& kind, const auto& fields) {
      writer->record(kind, fields);
    });
  }
  if (prometheus_) {
    sinks.emplace_back([exporter = prometheus_.get()](const std::string& kind, const auto& fields) {
      exporter->record(kind, fields);
    });
  }
  metrics_ = std::make_unique<MetricsWriter>(
      (std::filesystem::path(runDir_) / "metrics.jsonl").string(), std::move(sinks));
}

TrainSummary Trainer::describeDryRun() {
  TrainSummary summary;
  summary.runDir = runDir_;
  if (isParameterServer()) return summary;
  int64_t parameterBytes = 0;
  for (const auto& p : model_->parameters()) parameterBytes += p.numel() * p.element_size();
  const ShardSampler sampler = trainSampler();
  const int replicaCount = replicas().size();
  const int64_t accumulation = cfg_.train.grad_accumulation;
  const int64_t globalBatch = microBatchSamples_ * accumulation;
  const int64_t perRank = microBatchSamples_ / replicaCount;
  const int64_t larger = microBatchSamples_ % replicaCount;
  char line[320];
  log("dry run: nothing is trained, and nothing is written to " + runDir_);
  std::snprintf(line, sizeof line, "  model %s: %lld parameters, %.2f MB", cfg_.model.name.c_str(),
                static_cast<long long>(parameterCount(*model_)), parameterBytes / 1e6);
  log(line);
  std::snprintf(
      line, sizeof line, "  data %s: %lld training samples, %s", cfg_.data.name.c_str(),
      static_cast<long long>(trainSet_->size()),
      testSet_ ? (std::to_string(testSet_->size()) + " test samples").c_str() : "no test set");
  log(line);
  std::snprintf(line, sizeof line,
                "  shards: %d replica(s) x %lld samples per micro-batch%s x %lld micro-batch(es) "
                "= global batch %lld",
                replicaCount, static_cast<long long>(perRank),
                larger ? (" (+1 on the first " + std::to_string(larger) + ")").c_str() : "",
                static_cast<long long>(accumulation), static_cast<long long>(globalBatch));
  log(line);
  std::snprintf(line, sizeof line,
                "  steps: %lld per epoch (%lld samples of each epoch left out), %lld epoch(s), "
                "%lld in all%s",
                static_cast<long long>(stepsPerEpoch_),
                static_cast<long long>(sampler.droppedPerEpoch()),
                static_cast<long long>(cfg_.train.epochs), static_cast<long long>(totalSteps_),
                cfg_.train.max_steps > 0 ? " (train.max_steps)" : "");
  log(line);
  log(resumeDir_
          ? "  resume: from " + *resumeDir_ + " at step " + std::to_string(resumeState_->step) +
                " (written by " + std::to_string(resumeState_->worldSize) + " rank(s))"
          : std::string("  resume: none, a fresh run"));
  return summary;
}

}  // namespace ringtrain
