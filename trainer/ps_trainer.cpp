#include "trainer/ps_trainer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "data/dataset_registry.h"
#include "data/loader.h"
#include "data/sharding.h"
#include "models/registry.h"
#include "trainer/evaluate.h"
#include "trainer/host/host_process.h"
#include "trainer/optim/optimizer.h"
#include "trainer/precision.h"
#include "trainer/ps/worker.h"
#include "trainer/report/metrics.h"

namespace fs = std::filesystem;

namespace ringtrain {

namespace {

using Clock = std::chrono::steady_clock;

// Blocking broadcast of a short string from `root` (start-up only).
std::string broadcastString(std::string text, int root, MPI_Comm comm, int rank) {
  int length = static_cast<int>(text.size());
  checkMpi(MPI_Bcast(&length, 1, MPI_INT, root, comm), "MPI_Bcast (resume path)", rank);
  text.resize(static_cast<size_t>(length));
  if (length > 0) {
    checkMpi(MPI_Bcast(text.data(), length, MPI_CHAR, root, comm), "MPI_Bcast (resume path)", rank);
  }
  return text;
}

// Per-rank figures gathered for the final report.
enum ReportField { kIsServer, kSteps, kWall, kCpu, kPushes, kHeld, kGap, kSkipped, kFields };

}  // namespace

PsTrainer::PsTrainer(Config cfg, RunOptions options, std::unique_ptr<Communicator>* commSlot)
    : PsTrainer(std::move(cfg), std::move(options), nullptr, nullptr, nullptr, commSlot) {}

PsTrainer::PsTrainer(Config cfg, RunOptions options, ModelPtr model, DatasetPtr trainSet,
                     DatasetPtr testSet, std::unique_ptr<Communicator>* commSlot)
    : cfg_(std::move(cfg)),
      options_(std::move(options)),
      model_(std::move(model)),
      trainSet_(std::move(trainSet)),
      testSet_(std::move(testSet)),
      commSlot_(commSlot ? commSlot : &ownedComm_),
      timeout_(cfg_.distributed.timeout()) {
  checkMpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &worldSize_), "MPI_Comm_size");
  roles_ = ps::assignRoles(worldSize_, cfg_.ps.servers, cfg_.ps.placement);
  const bool userSupplied = model_ != nullptr;
  torch::manual_seed(cfg_.train.seed);
  if (!model_) model_ = makeModel(cfg_.model.name, cfg_.model.options);
  layout_ = std::make_unique<ps::Layout>(ps::parameterInfo(*model_), roles_.numServers());
  if (!isServer() && !userSupplied && !trainSet_) {
    trainSet_ = makeDataset(cfg_.data, Split::Train);
    testSet_ = makeDataset(cfg_.data, Split::Test);
  }
  if (!isServer() && !trainSet_) throw ConfigError("no training dataset given", "", rank_);
  setUp();
}

PsTrainer::~PsTrainer() = default;

void PsTrainer::log(const std::string& line) {
  if (firstWorker() && !options_.quiet) progress_->println(line);
}

std::string PsTrainer::partitionRoot(int server) const {
  return (fs::path(runDir_) / "ps" / ("server-" + std::to_string(server))).string();
}

void PsTrainer::setUp() {
  objective_ = options_.objective ? *options_.objective : objectiveFor(cfg_.train);
  // A server's optimizer step on a partition is memory-bound: it leaves the cores to workers.
  setIntraOpThreads(isServer() ? 1 : cfg_.train.threads, worldSize_);
  if (cfg_.train.retain_host_memory) retainFreedHostMemory();

  runDir_ =
      options_.runDir.empty() ? (fs::path("runs") / cfg_.train.run_name).string() : options_.runDir;
  comms_ = std::make_unique<ps::Comms>(ps::makeComms(MPI_COMM_WORLD, roles_));
  checkSameLayoutEverywhere();

  state_.worldSize = worldSize_;
  state_.modelName = cfg_.model.name;
  state_.modelFingerprint = moduleFingerprint(*model_);
  state_.configHash = stableHash(cfg_.toYaml());
  if (isServer()) return;

  *commSlot_ = makeCommunicator(cfg_.distributed.backend, comms_->role.get(), timeout_);
  workerComm_ = commSlot_->get();
  stubOptimizer_ = makeOptimizer(cfg_.optimizer, model_->parameters());
  const ShardSampler sampler(trainSet_->size(), cfg_.data.batch_size, roles_.workerIndex(rank_),
                             roles_.numWorkers(), cfg_.train.seed, cfg_.data.shuffle);
  stepsPerEpoch_ = sampler.stepsPerEpoch() / cfg_.train.grad_accumulation;
  if (stepsPerEpoch_ < 1) {
    throw ConfigError("train.grad_accumulation (" + std::to_string(cfg_.train.grad_accumulation) +
                          ") exceeds the " + std::to_string(sampler.stepsPerEpoch()) +
                          " batches of an epoch",
                      "lower train.grad_accumulation or data.batch_size", rank_);
  }
  totalSteps_ = stepsPerEpoch_ * cfg_.train.epochs;
  if (cfg_.train.max_steps > 0) totalSteps_ = std::min(totalSteps_, cfg_.train.max_steps);

  if (firstWorker()) {
    progress_ = std::make_unique<ProgressPrinter>(stdout);
    std::error_code ec;
    fs::create_directories(runDir_, ec);
    if (ec) {
      throw Error("cannot create run directory " + runDir_ + ": " + ec.message(),
                  "choose a writable location with --run-dir", rank_);
    }
    std::ofstream(fs::path(runDir_) / "config.yaml") << cfg_.toYaml();
    metrics_ = std::make_unique<MetricsWriter>((fs::path(runDir_) / "metrics.jsonl").string());
    std::string servers;
    for (int r : roles_.servers) servers += (servers.empty() ? "" : ",") + std::to_string(r);
    log("ringtrain " RINGTRAIN_VERSION ": parameter-server mode (" + cfg_.ps.consistency +
        (cfg_.ps.consistency == "ssp" ? ", staleness " + std::to_string(cfg_.ps.staleness) : "") +
        "), model " + cfg_.model.name + " with " + std::to_string(parameterCount(*model_)) +
        " parameters, " + std::to_string(roles_.numWorkers()) + " worker(s), " +
        std::to_string(roles_.numServers()) + " server(s) at rank(s) " + servers + ", run dir " +
        runDir_);
    log("partition: " + layout_->describe());
  }
}

// Every rank must agree on the layout and the protocol, or messages would not line up.
void PsTrainer::checkSameLayoutEverywhere() {
  const std::string mine = stableHash(layout_->fingerprint() + "|" + cfg_.ps.consistency + "|" +
                                      std::to_string(cfg_.ps.staleness));
  const auto local = static_cast<int64_t>(std::stoull(mine, nullptr, 16));
  std::vector<int64_t> all(static_cast<size_t>(worldSize_));
  checkMpi(MPI_Allgather(&local, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, comms_->ps.get()),
           "MPI_Allgather (parameter-server layout)", rank_);
  for (int r = 0; r < worldSize_; ++r) {
    if (all[static_cast<size_t>(r)] != all[0]) {
      throw ConfigError("rank " + std::to_string(r) +
                            " has a different parameter-server layout or ps settings than rank 0",
                        "every rank must use the same config and model code", rank_);
    }
  }
}

// The first worker picks the checkpoint (or none); everyone else follows its choice, so
// that servers load the partitions of exactly the step the workers resume at.
std::string PsTrainer::agreeOnResumeDir() {
  if (options_.resume.empty()) return {};
  // A NUL byte cannot start a path: it tells the others that the first worker failed, so
  // that they fail too instead of waiting for it.
  const std::string failed(1, '\0');
  std::string dir;
  std::exception_ptr error;
  if (firstWorker()) {
    try {
      const auto warn = [this](const std::string& m) { log("warning: " + m); };
      if (options_.resume == "auto") {
        const auto latest = CheckpointStore(runDir_).latestValid(warn);
        if (latest) {
          dir = *latest;
        } else {
          log("no checkpoint in " + runDir_ + " yet; starting from scratch");
        }
      } else {
        dir = resolveCheckpoint(options_.resume, warn);
      }
    } catch (...) {
      error = std::current_exception();
      dir = failed;
    }
  }
  dir = broadcastString(dir, roles_.workers[0], comms_->ps.get(), rank_);
  if (error) std::rethrow_exception(error);
  if (dir == failed) {
    throw CheckpointError("the first worker (rank " + std::to_string(roles_.workers[0]) +
                              ") could not open the checkpoint to resume from",
                          "see rank " + std::to_string(roles_.workers[0]) + "'s error", rank_);
  }
  return dir;
}

TrainSummary PsTrainer::run() {
  const auto start = Clock::now();
  const std::string resumeDir = agreeOnResumeDir();
  TrainSummary summary;
  summary.runDir = runDir_;
  if (isServer()) {
    runServer(resumeDir);
    summary.steps = serverStats_.updates;
  } else {
    summary = runWorker(resumeDir);
  }
  summary.wallSeconds = secondsSince(start);
  report(summary, summary.wallSeconds);
  return summary;
}

void PsTrainer::runServer(const std::string& resumeDir) {
  const int index = roles_.serverIndex(rank_);
  ps::Server server(cfg_, roles_, *layout_, comms_->ps.get(), comms_->role.get());
  const auto partitionState = [this](int64_t step) {
    TrainingState state = state_;
    state.step = step;
    state.modelFingerprint = layout_->fingerprint();
    return state;
  };
  // One more than the main store keeps: the partitions of the newest committed checkpoint
  // survive even when a newer partition was written but its main checkpoint was not.
  const int keep = static_cast<int>(cfg_.checkpoint.keep_last) + 1;
  server.setCheckpointWriter(
      [this, index, keep, partitionState](int64_t step, const torch::nn::Module& partition,
                                          const torch::optim::Optimizer& optimizer) {
        CheckpointStore(partitionRoot(index))
            .save(partition, optimizer, partitionState(step), cfg_.toYaml(), keep);
      });
  if (!resumeDir.empty()) {
    const fs::path main(resumeDir);
    const auto dir = (main.parent_path().parent_path() / "ps" /
                      ("server-" + std::to_string(index)) / "checkpoints" / main.filename())
                         .string();
    const std::string hint =
        "resume with the world size and ps.servers the run was started "
        "with (every server's partition of that step must exist)";
    try {
      verifyCheckpoint(dir);
    } catch (const CheckpointError& e) {
      throw CheckpointError(
          std::string("parameter server ") + std::to_string(index) + " cannot resume: " + e.what(),
          hint, rank_);
    }
    const TrainingState saved = readTrainingState(dir);
    if (saved.modelFingerprint != layout_->fingerprint()) {
      throw CheckpointError("partition " + dir +
                                " was written with a different parameter-server "
                                "layout",
                            hint, rank_);
    }
    loadCheckpoint(dir, server.partitionModule(), &server.optimizer(), false);
    server.markLoaded();
  }
  serverStats_ = server.serve();
}

void PsTrainer::resumeWorker(const std::string& dir) {
  const TrainingState saved = readTrainingState(dir);
  if (saved.modelFingerprint != state_.modelFingerprint) {
    throw CheckpointError("checkpoint " + dir + " holds model '" + saved.modelName +
                              "' with different parameters than the configured model '" +
                              cfg_.model.name + "'",
                          "resume with the config the checkpoint was written with", rank_);
  }
  if (saved.worldSize != worldSize_) {
    throw CheckpointError(
        "checkpoint " + dir + " was written by " + std::to_string(saved.worldSize) +
            " ranks, this job has " + std::to_string(worldSize_),
        "resume with mpirun -np " + std::to_string(saved.worldSize) + " and the same ps.servers",
        rank_);
  }
  const auto fingerprint = state_.modelFingerprint;
  const auto configHash = state_.configHash;
  state_ = saved;
  state_.configHash = configHash;
  state_.modelFingerprint = fingerprint;
  log("resumed from " + dir + " at step " + std::to_string(state_.step));
}

double PsTrainer::trainStep(ps::Worker& worker, Loader& loader) {
  const int64_t accumulation = cfg_.train.grad_accumulation;
  model_->train();
  double stepLoss = 0.0;
  for (int64_t micro = 0; micro < accumulation; ++micro) {
    auto batch = loader.next();
    if (!batch) throw TrainingError("data loader ended early", "", rank_);
    torch::Tensor loss;
    {
      const AutocastScope autocast(cfg_.train.precision, torch::kCPU);
      loss = objective_
                 .perPrediction(model_->forward(batch->inputs).to(torch::kFloat32), batch->targets)
                 .mean();
    }
    if (micro == accumulation - 1) worker.beginBackward(state_.step, totalSteps_);
    (loss / static_cast<double>(accumulation)).backward();
    stepLoss += loss.item<double>() / accumulation;
    ++state_.stepInEpoch;
  }
  if (!std::isfinite(stepLoss) && cfg_.train.on_nonfinite == "abort") {
    throw TrainingError("non-finite loss at step " + std::to_string(state_.step),
                        "lower optimizer.lr or set train.on_nonfinite: skip", rank_);
  }
  // Under asp/ssp each push is applied alone, so its worker clips it (bsp clips the average
  // on the servers, as all-reduce mode clips after averaging).
  bool skip = false;
  if (cfg_.ps.consistency != "bsp" && cfg_.train.grad_clip_norm > 0.0) {
    const double norm =
        torch::nn::utils::clip_grad_norm_(model_->parameters(), cfg_.train.grad_clip_norm);
    if (!std::isfinite(norm)) {
      if (cfg_.train.on_nonfinite != "skip") {
        throw TrainingError("non-finite gradient norm at step " + std::to_string(state_.step),
                            "lower optimizer.lr, or set train.on_nonfinite: skip", rank_);
      }
      skip = true;
    }
  }
  worker.pushAndPull(state_.step, totalSteps_, skip);
  for (auto& p : model_->parameters()) p.mutable_grad() = torch::Tensor();
  return stepLoss;
}

void PsTrainer::syncPoint(ps::Worker& worker, bool checkpoint, bool evaluate, EvalResult* eval) {
  const bool save = checkpoint && cfg_.checkpoint.enabled;
  worker.sync(state_.step, save);
  if (evaluate) {
    *eval = testSet_ ? evaluateModel(*model_, *testSet_, cfg_.data.eval_batch_size, *workerComm_,
                                     timeout_, objective_)
                     : EvalResult();
    state_.bestAccuracy = std::max(state_.bestAccuracy, eval->accuracy);
    if (firstWorker()) {
      metrics_->eval(state_.step, state_.epoch, eval->loss, eval->accuracy);
      log(evalLine(state_.epoch, state_.step, *eval));
    }
  }
  // The servers saved their partitions before answering the sync; this commits the whole.
  if (save && firstWorker()) {
    CheckpointStore(runDir_).save(*model_, *stubOptimizer_, state_, cfg_.toYaml(),
                                  static_cast<int>(cfg_.checkpoint.keep_last));
  }
}

TrainSummary PsTrainer::runWorker(const std::string& resumeDir) {
  if (!resumeDir.empty()) resumeWorker(resumeDir);
  // Hooks push while backward runs, unless the worker must see the whole gradient first.
  const bool clipOnWorker = cfg_.ps.consistency != "bsp" && cfg_.train.grad_clip_norm > 0.0;
  ps::Worker worker(cfg_, roles_, *layout_, comms_->ps.get(), model_->parameters(),
                    cfg_.distributed.overlap && !clipOnWorker);
  if (resumeDir.empty() && firstWorker()) worker.sendInitial();
  worker.sync(state_.step, false);  // every worker starts from the servers' parameters

  const ShardSampler sampler(trainSet_->size(), cfg_.data.batch_size, roles_.workerIndex(rank_),
                             roles_.numWorkers(), cfg_.train.seed, cfg_.data.shuffle);
  const int64_t accumulation = cfg_.train.grad_accumulation;
  const int64_t microStepsPerEpoch = stepsPerEpoch_ * accumulation;
  // Samples per step summed over the workers (an estimate under asp/ssp, where workers
  // may be a few steps apart; the summary counts exactly).
  const int64_t globalBatch = cfg_.data.batch_size * roles_.numWorkers() * accumulation;
  Loader loader(trainSet_, sampler, cfg_.data.prefetch, {state_.epoch, state_.stepInEpoch});
  bool loaderPositioned = true;

  TrainSummary summary;
  summary.runDir = runDir_;
  const auto start = Clock::now();
  const int64_t firstStep = state_.step;
  auto intervalStart = Clock::now();
  int64_t intervalSteps = 0;
  double intervalLoss = 0.0;
  EvalResult lastEval;
  bool evaluatedAtEnd = false;

  while (state_.step < totalSteps_ && state_.epoch < cfg_.train.epochs) {
    if (!loaderPositioned) loader.startEpoch(state_.epoch, state_.stepInEpoch);
    loaderPositioned = false;
    evaluatedAtEnd = false;
    while (state_.stepInEpoch < microStepsPerEpoch && state_.step < totalSteps_) {
      const double stepLoss = trainStep(worker, loader);
      ++state_.step;
      ++intervalSteps;
      intervalLoss += std::isfinite(stepLoss) ? stepLoss : 0.0;
      if (firstWorker() &&
          (state_.step % cfg_.train.log_every == 0 || state_.step == totalSteps_)) {
        const double meanLoss = intervalLoss / static_cast<double>(intervalSteps);
        const double samplesPerSecond =
            intervalSteps * globalBatch / std::max(secondsSince(intervalStart), 1e-9);
        const double lr =
            scheduledLearningRate(cfg_.schedule, cfg_.optimizer.lr, state_.step - 1, totalSteps_);
        metrics_->train(state_.step, state_.epoch, meanLoss, lr, samplesPerSecond);
        if (!options_.quiet) {
          const double eta = (totalSteps_ - state_.step) * globalBatch / samplesPerSecond;
          progress_->update(state_.epoch, cfg_.train.epochs, state_.step, totalSteps_, meanLoss,
                            samplesPerSecond, eta);
        }
        intervalStart = Clock::now();
        intervalSteps = 0;
        intervalLoss = 0.0;
      }
      // (At the epoch's or the run's last step the sync point below saves anyway.)
      if (cfg_.checkpoint.every_steps > 0 && state_.step % cfg_.checkpoint.every_steps == 0 &&
          state_.stepInEpoch < microStepsPerEpoch && state_.step < totalSteps_) {
        syncPoint(worker, true, false, &lastEval);
      }
    }
    if (state_.stepInEpoch >= microStepsPerEpoch) {
      ++state_.epoch;
      state_.stepInEpoch = 0;
    }
    syncPoint(worker, true, true, &lastEval);
    evaluatedAtEnd = true;
  }
  if (!evaluatedAtEnd) syncPoint(worker, false, true, &lastEval);
  worker.finish();

  summary.steps = state_.step;
  summary.finalEval = lastEval;
  summary.bestAccuracy = state_.bestAccuracy;
  summary.wallSeconds = secondsSince(start);
  samplesTrained_ =
      static_cast<double>((state_.step - firstStep) * cfg_.data.batch_size * accumulation);
  summary.samplesPerSecond = samplesTrained_ / std::max(summary.wallSeconds, 1e-9);
  return summary;
}

// Gathers every rank's figures on the first worker, which writes the summary (samples/s of
// all workers together) and one ps_server record per server.
void PsTrainer::report(TrainSummary& summary, double wallSeconds) {
  std::array<double, kFields> mine{};
  mine[kIsServer] = isServer() ? 1.0 : 0.0;
  mine[kSteps] = static_cast<double>(summary.steps);
  mine[kWall] = isServer() ? serverStats_.wallSeconds : wallSeconds;
  mine[kCpu] = isServer() ? serverStats_.cpuSeconds : 0.0;
  mine[kPushes] = static_cast<double>(serverStats_.pushes);
  mine[kHeld] = static_cast<double>(serverStats_.heldReplies);
  mine[kGap] = static_cast<double>(serverStats_.maxClockGap);
  mine[kSkipped] = static_cast<double>(serverStats_.skipped);
  std::vector<double> sent(mine.begin(), mine.end());
  sent.push_back(samplesTrained_);
  const int fields = static_cast<int>(sent.size());
  std::vector<double> all(static_cast<size_t>(fields * worldSize_));
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Igather(sent.data(), fields, MPI_DOUBLE, all.data(), fields, MPI_DOUBLE,
                       roles_.workers[0], comms_->ps.get(), &request),
           "MPI_Igather (parameter-server report)", rank_);
  ps::PoliteWaiter(timeout_, rank_).wait(request, nullptr, [] {
    return std::string("every rank's end-of-run report");
  });
  if (!firstWorker()) return;

  double samples = 0.0;
  double workerWall = 0.0;
  double workerSteps = 0.0;
  for (int r = 0; r < worldSize_; ++r) {
    const double* row = &all[static_cast<size_t>(r * fields)];
    if (row[kIsServer] != 0.0) {
      const double cpuFraction = row[kCpu] / std::max(row[kWall], 1e-9);
      metrics_->record("ps_server", {{"rank", static_cast<double>(r)},
                                     {"updates", row[kSteps]},
                                     {"pushes", row[kPushes]},
                                     {"wall_s", row[kWall]},
                                     {"cpu_s", row[kCpu]},
                                     {"cpu_fraction", cpuFraction},
                                     {"held_replies", row[kHeld]},
                                     {"max_clock_gap", row[kGap]},
                                     {"skipped", row[kSkipped]}});
      char line[200];
      std::snprintf(line, sizeof line,
                    "server rank %d: %.0f updates from %.0f pushes, CPU %.1f%% of one core over "
                    "%.1f s, largest worker step gap %.0f",
                    r, row[kSteps], row[kPushes], 100.0 * cpuFraction, row[kWall], row[kGap]);
      log(line);
    } else {
      samples += row[fields - 1];
      workerWall = std::max(workerWall, row[kWall]);
      workerSteps += row[kSteps];
    }
  }
  summary.samplesPerSecond = samples / std::max(workerWall, 1e-9);
  const double stepsPerWorker = workerSteps / roles_.numWorkers();
  const double msPerStep = 1000.0 * workerWall / std::max(stepsPerWorker, 1.0);
  metrics_->record("summary", {{"step", static_cast<double>(summary.steps)},
                               {"best_accuracy", summary.bestAccuracy},
                               {"wall_s", workerWall},
                               {"samples_per_s", summary.samplesPerSecond},
                               {"ms_per_step", msPerStep},
                               {"workers", static_cast<double>(roles_.numWorkers())},
                               {"servers", static_cast<double>(roles_.numServers())}});
  char line[200];
  std::snprintf(line, sizeof line, "done: %lld steps, %s, wall %s, %.0f samples/s, %.2f ms/step",
                static_cast<long long>(summary.steps),
                outcomeText(summary.bestAccuracy, summary.finalEval).c_str(),
                formatDuration(workerWall).c_str(), summary.samplesPerSecond, msPerStep);
  log(line);
}

}  // namespace ringtrain
