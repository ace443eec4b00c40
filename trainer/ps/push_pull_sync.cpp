#include "trainer/ps/push_pull_sync.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "trainer/report/timeline.h"
#include "trainer/sync/fingerprint.h"

namespace ringtrain::ps {

namespace {

bool clipsOnWorker(const Config& cfg) {
  return cfg.ps.consistency != "bsp" && cfg.train.grad_clip_norm > 0.0;
}

}  // namespace

// Hooks push while backward runs, unless the worker must see the whole gradient first.
PushPullSync::PushPullSync(const Config& cfg, Cluster& cluster,
                           std::vector<torch::Tensor> parameters, int64_t totalSteps)
    : cfg_(cfg),
      cluster_(cluster),
      parameters_(parameters),
      totalSteps_(totalSteps),
      clipOnWorker_(clipsOnWorker(cfg)),
      worker_(cfg, cluster.roles(), cluster.layout(), cluster.psComm(), std::move(parameters),
              cfg.distributed.overlap && !clipOnWorker_) {}

void PushPullSync::start(int64_t step, bool resumed) {
  // A fresh run starts from the first worker's parameters (equal on every worker by now); a
  // resumed one from the partitions the servers loaded.
  if (!resumed && cluster_.workerIndex() == 0) worker_.sendInitial();
  worker_.sync(step, false);
}

void PushPullSync::prepareBackward(int64_t step, bool lastMicroBatch) {
  if (lastMicroBatch) worker_.beginBackward(step, totalSteps_);
}

bool PushPullSync::finishStep(int64_t step, double, StepPhases& phases) {
  bool skip = false;
  timed(phases.update, [&] {
    if (!clipOnWorker_) return;
    const double norm = torch::nn::utils::clip_grad_norm_(parameters_, cfg_.train.grad_clip_norm);
    if (std::isfinite(norm)) return;
    if (cfg_.train.on_nonfinite != "skip") {
      throw TrainingError("non-finite gradient norm at step " + std::to_string(step),
                          "lower optimizer.lr, or set train.on_nonfinite: skip",
                          cluster_.worldRank());
    }
    skip = true;  // the servers count the step without applying it
  });
  {
    const Timeline::Scope span(timeline_, "push and pull");
    timed(phases.syncWait, [&] { worker_.pushAndPull(step, totalSteps_, skip); });
  }
  // The next step's gradients accumulate from nothing (an undefined gradient pushes zeros).
  for (auto& p : parameters_) p.mutable_grad() = torch::Tensor();
  return !skip;
}

void PushPullSync::meet(int64_t step, bool checkpoint) { worker_.sync(step, checkpoint); }

void PushPullSync::finishRun(RunReport& report) {
  worker_.finish();
  ReportRow mine{};
  mine[kSteps] = static_cast<double>(report.steps);
  mine[kWall] = report.wallSeconds;
  mine[kSamples] = report.samples;
  const auto all = gatherReport(cluster_, mine, cfg_.distributed.timeout());
  if (all.empty()) return;  // not the first worker

  double samples = 0.0;
  double workerWall = 0.0;
  double workerSteps = 0.0;
  for (size_t r = 0; r < all.size(); ++r) {
    const ReportRow& row = all[r];
    if (row[kIsServer] == 0.0) {
      samples += row[kSamples];
      workerWall = std::max(workerWall, row[kWall]);
      workerSteps += row[kSteps];
      continue;
    }
    const double cpuFraction = row[kCpu] / std::max(row[kWall], 1e-9);
    report.records.push_back({"ps_server",
                              {{"rank", static_cast<double>(r)},
                               {"updates", row[kSteps]},
                               {"pushes", row[kPushes]},
                               {"wall_s", row[kWall]},
                               {"cpu_s", row[kCpu]},
                               {"cpu_fraction", cpuFraction},
                               {"held_replies", row[kHeld]},
                               {"max_clock_gap", row[kGap]},
                               {"skipped", row[kSkipped]}}});
    char line[200];
    std::snprintf(line, sizeof line,
                  "server rank %zu: %.0f updates from %.0f pushes, CPU %.1f%% of one core over "
                  "%.1f s, largest worker step gap %.0f",
                  r, row[kSteps], row[kPushes], 100.0 * cpuFraction, row[kWall], row[kGap]);
    report.lines.push_back(line);
  }
  // Workers may be a few steps apart under asp/ssp: count what each one trained.
  const int workers = cluster_.roles().numWorkers();
  report.wallSeconds = workerWall;
  report.samplesPerSecond = samples / std::max(workerWall, 1e-9);
  const double msPerStep = 1000.0 * workerWall / std::max(workerSteps / workers, 1.0);
  report.summaryFields = {{"ms_per_step", msPerStep},
                          {"workers", static_cast<double>(workers)},
                          {"servers", static_cast<double>(cluster_.roles().numServers())}};
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ", %.2f ms/step", msPerStep);
  report.doneSuffix = suffix;
}

// The parameters in the order they are pushed, with the servers that own them, then the
// buffers (made equal once at the start).
std::vector<std::string> PushPullSync::fingerprint(const torch::nn::Module& model) const {
  std::vector<std::string> lines;
  const auto parameters = model.named_parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    std::string servers;
    for (int s : cluster_.layout().serversOf(static_cast<int64_t>(i))) {
      servers += (servers.empty() ? "" : ",") + std::to_string(s);
    }
    lines.push_back(
        fingerprintLine(parameters[i].key(), parameters[i].value(), "server " + servers));
  }
  for (const auto& buffer : model.named_buffers()) {
    lines.push_back(fingerprintLine(buffer.key(), buffer.value(), "buffer"));
  }
  return lines;
}

std::string PushPullSync::describe() const {
  const Roles& roles = cluster_.roles();
  std::string servers;
  for (int r : roles.servers) servers += (servers.empty() ? "" : ",") + std::to_string(r);
  const std::string staleness =
      cfg_.ps.consistency == "ssp" ? ", staleness " + std::to_string(cfg_.ps.staleness) : "";
  return "parameter-server mode (" + cfg_.ps.consistency + staleness + "), " +
         std::to_string(roles.numWorkers()) + " worker(s), " + std::to_string(roles.numServers()) +
         " server(s) at rank(s) " + servers + "\npartition: " + cluster_.layout().describe();
}

}  // namespace ringtrain::ps
