#include "trainer/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "collectives/gpu_backend.h"
#include "collectives/mpi_context.h"
#include "core/error.h"
#include "core/faults.h"
#include "data/dataset_registry.h"
#include "data/loader.h"
#include "data/sharding.h"
#include "models/registry.h"
#include "trainer/allreduce/allreduce_sync.h"
#include "trainer/allreduce/replicas.h"
#include "trainer/checkpoint/resume.h"
#include "trainer/checkpoint/run_directory.h"
#include "trainer/deadlines.h"
#include "trainer/evaluate.h"
#include "trainer/host/host_process.h"
#include "trainer/host/stop_signals.h"
#include "trainer/optim/optimizer.h"
#include "trainer/precision.h"
#include "trainer/ps/cluster.h"
#include "trainer/ps/push_pull_sync.h"
#include "trainer/ps/serve.h"
#include "trainer/report/environment.h"
#include "trainer/report/hosts.h"
#include "trainer/report/metrics.h"
#include "trainer/report/prometheus.h"
#include "trainer/report/tensorboard.h"
#include "trainer/report/timeline.h"
#include "trainer/sync/stop_agreement.h"

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
  const bool userSupplied = model_ != nullptr;
  checkSameConfigEverywhere();
  torch::manual_seed(cfg_.train.seed);
  if (!model_) model_ = makeModel(cfg_.model.name, cfg_.model.options);
  if (processFaults().trigger(FaultPoint::BuildModel, comm_.rank(), 0)) {
    model_->register_parameter("fault_injected", torch::zeros({3}));  // test-only
  }
  if (cfg_.distributed.mode == "ps") joinCluster();
  if (!isParameterServer()) {
    if (!userSupplied && !trainSet_) {
      trainSet_ = makeDataset(cfg_.data, Split::Train);
      testSet_ = makeDataset(cfg_.data, Split::Test);
    }
    if (!trainSet_) throw ConfigError("no training dataset given", "", comm_.rank());
  }
  setUp();
}

Trainer::~Trainer() = default;

bool Trainer::isParameterServer() const { return cluster_ && cluster_->isServer(); }

void Trainer::log(const std::string& line) {
  if (replicas_ && replicas_->rank() == 0 && !options_.quiet) progress_->println(line);
}

void Trainer::joinCluster() {
  int worldRank = -1;
  int worldSize = 0;
  checkMpi(MPI_Comm_rank(MPI_COMM_WORLD, &worldRank), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &worldSize), "MPI_Comm_size");
  if (comm_.size() != worldSize || comm_.rank() != worldRank) {
    throw ConfigError(
        "distributed.mode: ps splits every rank of the job into servers and "
        "workers, but the Trainer was given a communicator of " +
            std::to_string(comm_.size()) + " of the job's " + std::to_string(worldSize) + " ranks",
        "pass makeCommunicator(cfg.distributed.backend, MPI_COMM_WORLD)", comm_.rank());
  }
  if (cfg_.distributed.backend == "nccl") {
    throw ConfigError(
        "distributed.mode: ps trains on the CPU, and distributed.backend: nccl is "
        "for GPUs",
        "set distributed.backend: ring, or distributed.mode: allreduce for NCCL", comm_.rank());
  }
  if (cfg_.train.check_replicas_every > 0 && cfg_.ps.consistency != "bsp") {
    throw ConfigError("train.check_replicas_every needs ps.consistency: bsp: under " +
                          cfg_.ps.consistency +
                          " the workers' replicas differ between the points where they meet",
                      "set train.check_replicas_every: 0, or ps.consistency: bsp", comm_.rank());
  }
  if (cfg_.distributed.zero > 0) {
    throw ConfigError(
        "distributed.zero shards the optimizer state over all-reduce ranks, and "
        "distributed.mode: ps keeps it on the servers (already partitioned)",
        "set distributed.zero: 0, or distributed.mode: allreduce", comm_.rank());
  }
  cluster_ = std::make_unique<ps::Cluster>(cfg_, *model_, comm_.rank());
}

void Trainer::setUp() {
  objective_ = options_.objective ? *options_.objective : objectiveFor(cfg_.train);
  if (!objective_.perPrediction) {
    throw ConfigError("RunOptions::objective has no perPrediction function",
                      "set it to a callable (output, targets) -> per-prediction losses",
                      comm_.rank());
  }
  for (const auto& [data, what] : {std::pair{trainSet_.get(), "the training data"},
                                   std::pair{testSet_.get(), "the test data"}}) {
    if (data) checkModelTakesData(*model_, *data, objective_, what, comm_.rank());
  }
  const std::optional<StepRange> timelineSteps = parseTimelineSteps(cfg_.train.timeline);
  const double straggler = cfg_.train.straggler_ratio;
  if (straggler > 0 && straggler < 1) {
    throw ConfigError(
        "train.straggler_ratio must be 0 (no warnings) or at least 1, got " + jsonNumber(straggler),
        "it is how many times the other ranks' work per step a rank's must take to "
        "be named a straggler (default 1.5)",
        comm_.rank());
  }
  if (cfg_.distributed.zero > 1) {
    throw ConfigError("distributed.zero: " + std::to_string(cfg_.distributed.zero) +
                          " is not supported: ringtrain shards optimizer state (stage 1) only",
                      "set distributed.zero: 1 (or 0 for none)", comm_.rank());
  }
  // A server's optimizer step on a partition is memory-bound: it leaves the cores to workers.
  setIntraOpThreads(isParameterServer() ? 1 : cfg_.train.threads, comm_.size());
  if (cfg_.train.retain_host_memory) retainFreedHostMemory();

  if (options_.runDir.empty()) checkRunName(cfg_.train.run_name, comm_.rank());
  runDir_ =
      options_.runDir.empty() ? (fs::path("runs") / cfg_.train.run_name).string() : options_.runDir;
  state_.worldSize = comm_.size();
  state_.modelName = cfg_.model.name;
  state_.modelFingerprint = moduleFingerprint(*model_);
  state_.configHash = stableHash(cfg_.toYaml());
  // Every rank's host (servers too), for the start-up output and the run dir's `hosts`.
  hostOfRank_ = hostOfEveryRank(comm_, startupTimeout(timeout_));
  claimRunDirectory();
  if (isParameterServer()) {
    chooseResume();
    return;
  }

  replicas_ = cluster_ ? &cluster_->workers() : &comm_;
  progress_ = std::make_unique<ProgressPrinter>(stdout);
  for (const std::string& note : runDirNotes_) log(note);
  chooseResume();
  state_.microBatchSamples = microBatchSamples_;
  // [GPU, backend nccl] The replica lives on this rank's GPU, moved before the optimizer and
  // the gradient buckets take its parameters; every other backend keeps it on the CPU.
  model_->to(trainingDevice(replicas()));
  // (Under ps the servers keep the optimizer state; the replicas' optimizer is never stepped
  // and is saved empty.)
  optimizer_ = makeOptimizer(cfg_.optimizer, model_->parameters());
  const ShardSampler sampler = trainSampler();
  stepsPerEpoch_ = sampler.stepsPerEpoch() / cfg_.train.grad_accumulation;
  if (stepsPerEpoch_ < 1) {
    throw ConfigError("train.grad_accumulation (" + std::to_string(cfg_.train.grad_accumulation) +
                          ") exceeds the " + std::to_string(sampler.stepsPerEpoch()) +
                          " batches of an epoch",
                      "lower train.grad_accumulation or data.batch_size", comm_.rank());
  }
  totalSteps_ = stepsPerEpoch_ * cfg_.train.epochs;
  if (resumeDir_) {
    // Steps before the resumed epoch may have had another size (data.batch_size changed
    // at an epoch's start): the horizon is what is done plus what the epochs left take.
    const TrainingState& saved = *resumeState_;
    totalSteps_ = saved.step - saved.stepInEpoch / cfg_.train.grad_accumulation +
                  (cfg_.train.epochs - saved.epoch) * stepsPerEpoch_;
  }
  if (cfg_.train.max_steps > 0) totalSteps_ = std::min(totalSteps_, cfg_.train.max_steps);
  if (resumeDir_ && resumeState_->step >= totalSteps_) refuseFinishedRunWithAnotherConfig();
  // (Only now, once nothing can refuse the run any more, does it write to the run directory.)
  checkpoints_ = std::make_unique<CheckpointStore>(runDir_);
  if (replicas().rank() == 0 && !options_.dryRun) {
    std::error_code ec;
    fs::create_directories(runDir_, ec);
    if (ec) {
      throw Error("cannot create run directory " + runDir_ + ": " + ec.message(),
                  "choose a writable location with --run-dir", 0);
    }
    std::ofstream(fs::path(runDir_) / "config.yaml") << cfg_.toYaml();
    if (cfg_.metrics.tensorboard) tensorboard_ = std::make_unique<TensorBoardWriter>(runDir_);
    const MetricsConfig& m = cfg_.metrics;
    if (m.prometheus_port > 0 || !m.prometheus_textfile.empty()) {
      const char* restarts = std::getenv("RINGTRAIN_RESTARTS");  // set by launch/ringtrain-run
      prometheus_ = std::make_unique<PrometheusExporter>(PrometheusOptions{
          static_cast<int>(m.prometheus_port), m.prometheus_address, m.prometheus_textfile,
          cfg_.train.run_name, restarts ? std::atof(restarts) : 0.0});
    }
    openMetrics();
    writeHostsFile((fs::path(runDir_) / "hosts").string(), hostOfRank_);
  }
  if (replicas().rank() == 0) {
    // What the run runs on: the log's first line, and env.yaml beside config.yaml.
    const EnvironmentReport environment = describeEnvironment(hostOfRank_);
    log(environment.oneLine());
    if (!options_.dryRun) std::ofstream(fs::path(runDir_) / "env.yaml") << environment.toYaml();
  }

  if (cluster_) {
    sync_ = std::make_unique<ps::PushPullSync>(cfg_, *cluster_, model_->parameters(), totalSteps_);
  } else {
    sync_ =
        std::make_unique<AllreduceSync>(cfg_, comm_, model_->parameters(), *optimizer_, totalSteps_,
                                        [this](const std::string& m) { log("warning: " + m); });
  }
  state_.totalSteps = totalSteps_;
  if (timelineSteps && !options_.dryRun) {
    // (Made before the start-up check below, which every rank passes before any rank can
    // write its file: rank 0's removal of an earlier attempt's files cannot hit a new one.)
    timeline_ =
        std::make_unique<Timeline>((fs::path(runDir_) / "timeline").string(), replicas().rank(),
                                   replicas().size(), hostOfRank_[comm_.rank()], *timelineSteps);
    sync_->traceTo(timeline_.get());
    if (timelineSteps->first > totalSteps_ && replicas().rank() == 0) {
      log("warning: train.timeline " + cfg_.train.timeline + " starts after the run's last step " +
          std::to_string(totalSteps_) + ": no timeline will be written");
    }
  }

  checkSameModelEverywhere("start-up", startupTimeout(timeout_));
  broadcastFromRankZero(replicas(), *model_, timeout_);

  // The strategy's description may hold a second line (the parameter-server partition).
  const std::string described = sync_->describe();
  const auto newline = described.find('\n');
  log("ringtrain " RINGTRAIN_VERSION ": model " + cfg_.model.name + " with " +
      std::to_string(parameterCount(*model_)) + " parameters, " + described.substr(0, newline) +
      ", run dir " + runDir_);
  if (newline != std::string::npos) log(described.substr(newline + 1));
  if (std::any_of(hostOfRank_.begin(), hostOfRank_.end(),
                  [&](const std::string& h) { return h != hostOfRank_.front(); })) {
    log("hosts: " + describeHosts(hostOfRank_));
  }
}

double Trainer::forwardBackward(const Batch& batch, double lossScale) {
  model_->train();
  // [GPU, backend nccl] The loader's batches are on the CPU; .to() is a no-op on the CPU.
  const torch::Device device = trainingDevice(replicas());
  torch::Tensor loss;
  {
    // Backward runs outside autocast, as PyTorch's AMP recipe has it; the loss is float32.
    const AutocastScope autocast(cfg_.train.precision, device);
    const Timeline::Scope span(timeline_.get(), "forward");
    loss = predict(*model_, objective_, batch, device,
                   "the training data (step " + std::to_string(state_.step + 1) + ")", comm_.rank())
               .losses.mean();
  }
  if (processFaults().trigger(FaultPoint::Loss, comm_.rank(), state_.step)) {
    loss = loss * std::numeric_limits<float>::quiet_NaN();  // test-only
  }
  const Timeline::Scope span(timeline_.get(), "backward");
  (loss * lossScale).backward();
  return loss.item<double>();
}

EvalResult Trainer::evalStep() {
  if (!testSet_) return EvalResult();
  const Timeline::Scope span(timeline_.get(), "eval");
  return withTimeoutContext("evaluation after step " + std::to_string(state_.step), [&] {
    return evaluateModel(*model_, *testSet_, cfg_.data.eval_batch_size, replicas(), timeout_,
                         objective_);
  });
}

EvalResult Trainer::evaluate() { return isParameterServer() ? EvalResult() : evalStep(); }

void Trainer::checkReplicasIdentical() {
  auto local = torch::tensor({parameterBytesHash(*model_)}, torch::kInt64);
  auto all = torch::empty({replicas().size()}, torch::kInt64);
  withTimeoutContext("replica check at step " + std::to_string(state_.step),
                     [&] { replicas().allgather(local, all)->wait(timeout_); });
  for (int r = 1; r < replicas().size(); ++r) {
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
    const Timeline::Scope span(timeline_.get(), "log");
    logInterval(interval.steps, interval.loss, interval.phases, secondsSince(interval.start),
                globalBatch);
    interval = LogInterval{};
  }
  // (At the epoch's and the run's last step endEpoch() saves anyway.)
  if (cfg_.checkpoint.enabled && due(cfg_.checkpoint.every_steps) &&
      state_.stepInEpoch < microStepsPerEpoch && state_.step < totalSteps_) {
    sync_->meet(state_.step, true);
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
  // Elastic resume may split a step's samples unevenly: a rank's gradient counts by its share.
  const double weight = loader.sampler().gradientWeight();
  for (int64_t micro = 0; micro < accumulation; ++micro) {
    auto batch = timed(phases.data, [&] {
      const Timeline::Scope span(timeline_.get(), "data wait");
      return loader.next();
    });
    if (!batch) throw TrainingError("data loader ended early", "", comm_.rank());
    if (sampleLog_.is_open()) {
      sampleLog_ << state_.epoch << ' ' << state_.stepInEpoch;
      for (const int64_t i : loader.sampler().indices(state_.epoch, state_.stepInEpoch)) {
        sampleLog_ << ' ' << i;
      }
      sampleLog_ << std::endl;  // flushed: a rank killed later keeps what it trained on
    }
    // Only the last micro-batch's backward sends gradients (the others accumulate).
    sync_->prepareBackward(state_.step, micro + 1 == accumulation);
    stepLoss += timed(phases.forwardBackward,
                      [&] { return forwardBackward(*batch, weight / accumulation); }) /
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
  sync_->meet(state_.step, cfg_.checkpoint.enabled);
  const EvalResult eval = evalStep();
  state_.bestAccuracy = std::max(state_.bestAccuracy, eval.accuracy);
  if (replicas().rank() == 0) {
    metrics_->eval(state_.step, state_.epoch, eval.loss, eval.accuracy);
    log(evalLine(state_.epoch, state_.step, eval));
  }
  saveCheckpoint();
  return eval;
}

TrainSummary Trainer::finish(double wallSeconds, int64_t stepsRun, int64_t globalBatch,
                             const EvalResult& lastEval) {
  RunReport report;
  report.steps = state_.step;
  report.samples = static_cast<double>(stepsRun * globalBatch) / replicas().size();
  report.wallSeconds = wallSeconds;
  report.samplesPerSecond = stepsRun * globalBatch / std::max(wallSeconds, 1e-9);
  sync_->finishRun(report);
  if (!stoppedBy_.empty()) report.doneSuffix += " (stopped by " + stoppedBy_ + ")";

  TrainSummary summary;
  summary.runDir = runDir_;
  summary.stoppedBy = stoppedBy_;
  summary.steps = state_.step;
  summary.finalEval = lastEval;
  summary.bestAccuracy = state_.bestAccuracy;
  summary.wallSeconds = report.wallSeconds;
  summary.samplesPerSecond = report.samplesPerSecond;
  if (replicas().rank() == 0) {
    for (const auto& record : report.records) metrics_->record(record.kind, record.fields);
    for (const auto& line : report.lines) log(line);
    std::vector<std::pair<std::string, double>> fields{{"step", static_cast<double>(summary.steps)},
                                                       {"best_accuracy", summary.bestAccuracy},
                                                       {"wall_s", summary.wallSeconds},
                                                       {"samples_per_s", summary.samplesPerSecond}};
    fields.insert(fields.end(), report.summaryFields.begin(), report.summaryFields.end());
    metrics_->record("summary", fields);
    char line[240];
    std::snprintf(line, sizeof line, "done: %lld steps, %s, wall %s, %.0f samples/s%s",
                  static_cast<long long>(summary.steps),
                  outcomeText(summary.bestAccuracy, lastEval).c_str(),
                  formatDuration(summary.wallSeconds).c_str(), summary.samplesPerSecond,
                  report.doneSuffix.c_str());
    log(line);
  }
  return summary;
}

TrainSummary Trainer::serve(const std::optional<std::string>& resumeDir) {
  const auto start = Clock::now();
  const ps::ServerStats stats = ps::serve(cfg_, *cluster_, runDir_, resumeDir.value_or(""), state_);
  TrainSummary summary;
  summary.runDir = runDir_;
  summary.steps = stats.updates;
  summary.wallSeconds = secondsSince(start);
  summary.serverStats = stats;
  return summary;
}

TrainSummary Trainer::run() {
  // A scheduler's SIGTERM or SIGUSR1 from here on ends the run at a checkpoint (servers too
  // keep running until the workers have saved theirs).
  const StopSignals signals;
  // The run directory is this run's until run() returns (or throws): another Trainer of the
  // same process may take it then.
  struct ReleaseRunDirectory {
    std::unique_ptr<RunDirectoryLock>& lock;
    ~ReleaseRunDirectory() { lock.reset(); }
  } release{runLock_};
  if (options_.dryRun) return describeDryRun();
  // (The checkpoint was chosen in setUp(): the steps per epoch depend on it.)
  const auto& resumeDir = resumeDir_;
  if (isParameterServer()) return serve(resumeDir);
  if (resumeDir) resumeFrom(*resumeDir);
  if (!options_.resume.empty()) rollBackMetrics();
  sync_->start(state_.step, resumeDir.has_value());

  const ShardSampler sampler = trainSampler();
  const int64_t microStepsPerEpoch = stepsPerEpoch_ * cfg_.train.grad_accumulation;
  const int64_t globalBatch = microBatchSamples_ * cfg_.train.grad_accumulation;
  if (!cfg_.train.sample_log.empty()) {
    std::error_code ec;
    fs::create_directories(cfg_.train.sample_log, ec);
    const auto path =
        fs::path(cfg_.train.sample_log) / ("rank-" + std::to_string(replicas().rank()) + ".txt");
    sampleLog_.open(path, std::ios::app);
    if (!sampleLog_) {
      throw ConfigError("cannot open train.sample_log file " + path.string(),
                        "give train.sample_log a writable directory, or leave it empty",
                        comm_.rank());
    }
  }
  // Start the loader at the cursor so its first prefetched batches are the ones we need.
  Loader loader(trainSet_, sampler, cfg_.data.prefetch, {state_.epoch, state_.stepInEpoch});
  bool loaderPositioned = true;
  const auto start = Clock::now();
  const int64_t firstStep = state_.step;
  LogInterval interval;
  EvalResult lastEval;
  bool evaluatedAtEnd = false;
  StopAgreement stop(replicas(), timeout_);

  while (state_.step < totalSteps_ && state_.epoch < cfg_.train.epochs) {
    if (!loaderPositioned) loader.startEpoch(state_.epoch, state_.stepInEpoch);
    loaderPositioned = false;
    evaluatedAtEnd = false;
    while (state_.stepInEpoch < microStepsPerEpoch && state_.step < totalSteps_) {
      processFaults().trigger(FaultPoint::StepStart, comm_.rank(), state_.step);
      if (timeline_) timeline_->beginStep(state_.step + 1);
      const double stepLoss = trainStep(loader, interval.phases);
      sync_->finishStep(state_.step, stepLoss, interval.phases);
      if (timeline_) timeline_->stepDone();
      ++state_.step;
      ++interval.steps;
      interval.loss += std::isfinite(stepLoss) ? stepLoss : 0.0;
      afterStep(interval, globalBatch, microStepsPerEpoch);
      // (An epoch's last step ends at a checkpoint anyway.)
      if (state_.stepInEpoch == microStepsPerEpoch || state_.step == totalSteps_) continue;
      const std::string signal = stop.afterStep(
          state_.step, {signals.termReceived(), signals.usr1Received(), signals.intReceived()});
      if (!signal.empty()) {
        stopForSignal(signal);
        break;
      }
    }
    if (!stoppedBy_.empty()) break;
    lastEval = endEpoch(microStepsPerEpoch);
    evaluatedAtEnd = true;
  }
  if (!evaluatedAtEnd && stoppedBy_.empty()) {
    sync_->meet(state_.step, false);
    lastEval = evalStep();
    state_.bestAccuracy = std::max(state_.bestAccuracy, lastEval.accuracy);
  }
  if (timeline_ && timeline_->traced()) timeline_->write();
  return finish(secondsSince(start), state_.step - firstStep, globalBatch, lastEval);
}

}  // namespace ringtrain
