#include "trainer/trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "collectives/gpu_backend.h"
#include "core/error.h"
#include "core/faults.h"
#include "data/dataset_registry.h"
#include "data/loader.h"
#include "data/sharding.h"
#include "models/registry.h"
#include "trainer/allreduce/allreduce_sync.h"
#include "trainer/allreduce/replicas.h"
#include "trainer/deadlines.h"
#include "trainer/evaluate.h"
#include "trainer/host/host_process.h"
#include "trainer/optim/optimizer.h"
#include "trainer/precision.h"
#include "trainer/report/metrics.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

using Clock = std::chrono::steady_clock;

// Stable hash of the exact bytes of every parameter: replicas that drifted apart by a
// single bit disagree. A replica on a GPU is copied to host memory first (a no-op on the CPU).
int64_t parameterBytesHash(const torch::nn::Module& module) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : module.parameters()) {
    auto t = p.detach().to(torch::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
    const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
    for (size_t i = 0; i < n; ++i) {
      h ^= bytes[i];
      h *= 1099511628211ULL;
    }
  }
  return static_cast<int64_t>(h);
}

}  // namespace

Trainer::Trainer(Config cfg, Communicator& comm, RunOptions options)
    : Trainer(cfg, comm, std::move(options), nullptr, nullptr, nullptr) {}

Trainer::Trainer(Config cfg, Communicator& comm, RunOptions options, ModelPtr model,
                 DatasetPtr trainSet, DatasetPtr testSet)
    : cfg_(std::move(cfg)),
      comm_(comm),
      options_(std::move(options)),
      model_(std::move(model)),
      trainSet_(std::move(trainSet)),
      testSet_(std::move(testSet)),
      timeout_(cfg_.distributed.timeout()) {
  // The two modes are two classes until one loop serves both: a ps config must not quietly
  // train by all-reduce.
  if (cfg_.distributed.mode != "allreduce") {
    throw ConfigError("distributed.mode: " + cfg_.distributed.mode +
                          " is not trained by ringtrain::Trainer, which all-reduces",
                      "construct ringtrain::PsTrainer(cfg, options) for parameter-server mode "
                      "(as `ringtrain train` does), or set distributed.mode: allreduce",
                      comm_.rank());
  }
  const bool userSupplied = model_ != nullptr;
  torch::manual_seed(cfg_.train.seed);
  if (!model_) model_ = makeModel(cfg_.model.name, cfg_.model.options);
  if (processFaults().trigger(FaultPoint::BuildModel, comm_.rank(), 0)) {
    model_->register_parameter("fault_injected", torch::zeros({3}));  // test-only
  }
  if (!userSupplied && !trainSet_) {
    trainSet_ = makeDataset(cfg_.data, Split::Train);
    testSet_ = makeDataset(cfg_.data, Split::Test);
  }
  if (!trainSet_) throw ConfigError("no training dataset given");
  setUp();
}

Trainer::~Trainer() = default;

void Trainer::log(const std::string& line) {
  if (comm_.rank() == 0 && !options_.quiet) progress_->println(line);
}

void Trainer::setUp() {
  objective_ = options_.objective ? *options_.objective : objectiveFor(cfg_.train);
  if (!objective_.perPrediction) {
    throw ConfigError("RunOptions::objective has no perPrediction function",
                      "set it to a callable (output, targets) -> per-prediction losses",
                      comm_.rank());
  }
  const double straggler = cfg_.train.straggler_ratio;
  if (straggler > 0 && straggler < 1) {
    throw ConfigError(
        "train.straggler_ratio must be 0 (no warnings) or at least 1, got " + jsonNumber(straggler),
        "it is how many times the other ranks' work per step a rank's must take to "
        "be named a straggler (default 1.5)",
        comm_.rank());
  }
  setIntraOpThreads(cfg_.train.threads, comm_.size());
  if (cfg_.train.retain_host_memory) retainFreedHostMemory();

  runDir_ =
      options_.runDir.empty() ? (fs::path("runs") / cfg_.train.run_name).string() : options_.runDir;
  progress_ = std::make_unique<ProgressPrinter>(stdout);
  checkpoints_ = std::make_unique<CheckpointStore>(runDir_);
  if (comm_.rank() == 0) {
    std::error_code ec;
    fs::create_directories(runDir_, ec);
    if (ec) {
      throw Error("cannot create run directory " + runDir_ + ": " + ec.message(),
                  "choose a writable location with --run-dir", 0);
    }
    std::ofstream(fs::path(runDir_) / "config.yaml") << cfg_.toYaml();
    metrics_ = std::make_unique<MetricsWriter>((fs::path(runDir_) / "metrics.jsonl").string());
  }

  // [GPU, backend nccl] The replica lives on this rank's GPU, moved before the optimizer and
  // the gradient buckets take its parameters; every other backend keeps it on the CPU.
  model_->to(trainingDevice(comm_));
  optimizer_ = makeOptimizer(cfg_.optimizer, model_->parameters());
  const ShardSampler sampler(trainSet_->size(), cfg_.data.batch_size, comm_.rank(), comm_.size(),
                             cfg_.train.seed, cfg_.data.shuffle);
  stepsPerEpoch_ = sampler.stepsPerEpoch() / cfg_.train.grad_accumulation;
  if (stepsPerEpoch_ < 1) {
    throw ConfigError("train.grad_accumulation (" + std::to_string(cfg_.train.grad_accumulation) +
                          ") exceeds the " + std::to_string(sampler.stepsPerEpoch()) +
                          " batches of an epoch",
                      "lower train.grad_accumulation or data.batch_size", comm_.rank());
  }
  totalSteps_ = stepsPerEpoch_ * cfg_.train.epochs;
  if (cfg_.train.max_steps > 0) totalSteps_ = std::min(totalSteps_, cfg_.train.max_steps);

  sync_ =
      std::make_unique<AllreduceSync>(cfg_, comm_, model_->parameters(), *optimizer_, totalSteps_,
                                      [this](const std::string& m) { log("warning: " + m); });

  state_.worldSize = comm_.size();
  state_.totalSteps = totalSteps_;
  state_.modelName = cfg_.model.name;
  state_.modelFingerprint = moduleFingerprint(*model_);
  state_.configHash = stableHash(cfg_.toYaml());

  checkSameModelEverywhere("start-up", startupTimeout(timeout_));
  broadcastFromRankZero(comm_, *model_, timeout_);

  if (comm_.rank() == 0 && !options_.quiet) {
    log("ringtrain " RINGTRAIN_VERSION ": model " + cfg_.model.name + " with " +
        std::to_string(parameterCount(*model_)) + " parameters, " + std::to_string(comm_.size()) +
        " rank(s), " + sync_->describe() + ", run dir " + runDir_);
  }
}

double Trainer::forwardBackward(const Batch& batch, double lossScale) {
  model_->train();
  // [GPU, backend nccl] The loader's batches are on the CPU; .to() is a no-op on the CPU.
  const torch::Device device = trainingDevice(comm_);
  torch::Tensor loss;
  {
    // Backward runs outside autocast, as PyTorch's AMP recipe has it; the loss is float32.
    const AutocastScope autocast(cfg_.train.precision, device);
    auto output = model_->forward(batch.inputs.to(device));
    loss = objective_.perPrediction(output.to(torch::kFloat32), batch.targets.to(device)).mean();
  }
  if (processFaults().trigger(FaultPoint::Loss, comm_.rank(), state_.step)) {
    loss = loss * std::numeric_limits<float>::quiet_NaN();  // test-only
  }
  (loss * lossScale).backward();
  return loss.item<double>();
}

void Trainer::logInterval(int64_t steps, double loss, const StepPhases& phases, double seconds,
                          int64_t globalBatch) {
  // Every rank's totals in the interval's one collective: summed for the means over ranks
  // that the record reports, and compared to find the slowest rank.
  enum { kLoss, kData, kForwardBackward, kSyncWait, kUpdate, kSeconds, kFields };
  const auto mine = torch::tensor(
      {loss, phases.data, phases.forwardBackward, phases.syncWait, phases.update, seconds},
      torch::kFloat64);
  auto gathered = torch::empty({comm_.size() * kFields}, torch::kFloat64);
  withTimeoutContext("metrics of step " + std::to_string(state_.step),
                     [&] { comm_.allgather(mine, gathered)->wait(timeout_); });
  const auto perRank = gathered.view({comm_.size(), kFields});
  const auto totals = perRank.sum(0);
  const double perStep = 1.0 / static_cast<double>(steps * comm_.size());
  const double meanLoss = totals[kLoss].item<double>() * perStep;
  const double msPerStep = 1000.0 * perStep;
  std::vector<std::pair<std::string, double>> extra{
      {"data_ms", totals[kData].item<double>() * msPerStep},
      {"forward_backward_ms", totals[kForwardBackward].item<double>() * msPerStep},
      {"sync_wait_ms", totals[kSyncWait].item<double>() * msPerStep},
      {"update_ms", totals[kUpdate].item<double>() * msPerStep}};
  if (comm_.size() > 1) {
    const auto workSeconds = perRank.select(1, kSeconds) - perRank.select(1, kSyncWait);
    std::vector<double> workMs;
    for (int r = 0; r < comm_.size(); ++r) {
      workMs.push_back(1000.0 * workSeconds[r].item<double>() / static_cast<double>(steps));
    }
    const Straggler slowest = findStraggler(workMs);
    extra.emplace_back("slowest_rank", slowest.rank);
    extra.emplace_back("slowest_rank_lead_ms", slowest.leadMs());
    warnOfStraggler(slowest, steps);
  }
  if (comm_.rank() != 0) return;
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

EvalResult Trainer::evalStep() {
  if (!testSet_) return EvalResult();
  return withTimeoutContext("evaluation after step " + std::to_string(state_.step), [&] {
    return evaluateModel(*model_, *testSet_, cfg_.data.eval_batch_size, comm_, timeout_,
                         objective_);
  });
}

EvalResult Trainer::evaluate() { return evalStep(); }

void Trainer::checkReplicasIdentical() {
  auto local = torch::tensor({parameterBytesHash(*model_)}, torch::kInt64);
  auto all = torch::empty({comm_.size()}, torch::kInt64);
  withTimeoutContext("replica check at step " + std::to_string(state_.step),
                     [&] { comm_.allgather(local, all)->wait(timeout_); });
  for (int r = 1; r < comm_.size(); ++r) {
    if (all[r].item<int64_t>() != all[0].item<int64_t>()) {
      throw TrainingError("replicas diverged at step " + std::to_string(state_.step) + ": rank " +
                              std::to_string(r) + " holds different parameters than rank 0",
                          "this is a bug in gradient synchronisation; please report it",
                          comm_.rank());
    }
  }
}

// What the next train record sums: the steps since the last one, their losses and phases.
struct Trainer::LogInterval {
  Clock::time_point start = Clock::now();
  int64_t steps = 0;
  double loss = 0.0;
  StepPhases phases;
};

// The steps of one optimizer step after its update, each when it is due: replica check,
// the log interval, a mid-epoch checkpoint, the fingerprint check, and the kill fault point.
void Trainer::afterStep(LogInterval& interval, int64_t globalBatch, int64_t microStepsPerEpoch) {
  const auto due = [this](int64_t every) { return every > 0 && state_.step % every == 0; };
  if (due(cfg_.train.check_replicas_every)) checkReplicasIdentical();
  if (due(cfg_.train.log_every) || state_.step == totalSteps_) {
    logInterval(interval.steps, interval.loss, interval.phases, secondsSince(interval.start),
                globalBatch);
    interval = LogInterval{};
  }
  // (At the epoch's last step endEpoch() saves anyway.)
  if (due(cfg_.checkpoint.every_steps) && state_.stepInEpoch < microStepsPerEpoch) {
    saveCheckpoint();
  }
  if (due(cfg_.distributed.fingerprint_every)) {
    checkSameModelEverywhere("step " + std::to_string(state_.step), timeout_);
  }
  processFaults().trigger(FaultPoint::AfterStep, comm_.rank(), state_.step);
}

// The micro-batches of one optimizer step, forward and backward; returns the step's loss.
double Trainer::trainStep(Loader& loader, StepPhases& phases) {
  const int64_t accumulation = cfg_.train.grad_accumulation;
  double stepLoss = 0.0;
  for (int64_t micro = 0; micro < accumulation; ++micro) {
    auto batch = timed(phases.data, [&] { return loader.next(); });
    if (!batch) throw TrainingError("data loader ended early", "", comm_.rank());
    // Only the last micro-batch's backward sends gradients (the others accumulate).
    sync_->prepareBackward(state_.step, micro + 1 == accumulation);
    stepLoss +=
        timed(phases.forwardBackward, [&] { return forwardBackward(*batch, 1.0 / accumulation); }) /
        accumulation;
    ++state_.stepInEpoch;
  }
  if (!std::isfinite(stepLoss) && cfg_.train.on_nonfinite == "abort") {
    throw TrainingError("non-finite loss at step " + std::to_string(state_.step),
                        "lower optimizer.lr or set train.on_nonfinite: skip", comm_.rank());
  }
  return stepLoss;
}

// At the end of an epoch (or of a run that stops inside one): evaluation, its record and
// line, and a checkpoint.
EvalResult Trainer::endEpoch(int64_t microStepsPerEpoch) {
  if (state_.stepInEpoch >= microStepsPerEpoch) {
    ++state_.epoch;
    state_.stepInEpoch = 0;
  }
  const EvalResult eval = evalStep();
  state_.bestAccuracy = std::max(state_.bestAccuracy, eval.accuracy);
  if (comm_.rank() == 0) {
    metrics_->eval(state_.step, state_.epoch, eval.loss, eval.accuracy);
    log(evalLine(state_.epoch, state_.step, eval));
  }
  saveCheckpoint();
  return eval;
}

TrainSummary Trainer::finish(double wallSeconds, int64_t stepsRun, int64_t globalBatch,
                             const EvalResult& lastEval) {
  TrainSummary summary;
  summary.runDir = runDir_;
  summary.steps = state_.step;
  summary.finalEval = lastEval;
  summary.bestAccuracy = state_.bestAccuracy;
  summary.wallSeconds = wallSeconds;
  summary.samplesPerSecond = stepsRun * globalBatch / std::max(summary.wallSeconds, 1e-9);
  if (comm_.rank() == 0) {
    metrics_->record("summary", {{"step", static_cast<double>(summary.steps)},
                                 {"best_accuracy", summary.bestAccuracy},
                                 {"wall_s", summary.wallSeconds},
                                 {"samples_per_s", summary.samplesPerSecond}});
    char line[200];
    std::snprintf(line, sizeof line, "done: %lld steps, %s, wall %s, %.0f samples/s",
                  static_cast<long long>(summary.steps),
                  outcomeText(summary.bestAccuracy, lastEval).c_str(),
                  formatDuration(summary.wallSeconds).c_str(), summary.samplesPerSecond);
    log(line);
  }
  return summary;
}

TrainSummary Trainer::run() {
  resumeIfAsked();
  const ShardSampler sampler(trainSet_->size(), cfg_.data.batch_size, comm_.rank(), comm_.size(),
                             cfg_.train.seed, cfg_.data.shuffle);
  const int64_t microStepsPerEpoch = stepsPerEpoch_ * cfg_.train.grad_accumulation;
  const int64_t globalBatch = cfg_.data.batch_size * comm_.size() * cfg_.train.grad_accumulation;
  // Start the loader at the cursor so its first prefetched batches are the ones we need.
  Loader loader(trainSet_, sampler, cfg_.data.prefetch, {state_.epoch, state_.stepInEpoch});
  bool loaderPositioned = true;
  const auto start = Clock::now();
  const int64_t firstStep = state_.step;
  LogInterval interval;
  EvalResult lastEval;
  bool evaluatedAtEnd = false;

  while (state_.step < totalSteps_ && state_.epoch < cfg_.train.epochs) {
    if (!loaderPositioned) loader.startEpoch(state_.epoch, state_.stepInEpoch);
    loaderPositioned = false;
    evaluatedAtEnd = false;
    while (state_.stepInEpoch < microStepsPerEpoch && state_.step < totalSteps_) {
      processFaults().trigger(FaultPoint::StepStart, comm_.rank(), state_.step);
      const double stepLoss = trainStep(loader, interval.phases);
      sync_->finishStep(state_.step, stepLoss, interval.phases);
      ++state_.step;
      ++interval.steps;
      interval.loss += std::isfinite(stepLoss) ? stepLoss : 0.0;
      afterStep(interval, globalBatch, microStepsPerEpoch);
    }
    lastEval = endEpoch(microStepsPerEpoch);
    evaluatedAtEnd = true;
  }
  if (!evaluatedAtEnd) {
    lastEval = evalStep();
    state_.bestAccuracy = std::max(state_.bestAccuracy, lastEval.accuracy);
  }
  return finish(secondsSince(start), state_.step - firstStep, globalBatch, lastEval);
}

}  // namespace ringtrain
