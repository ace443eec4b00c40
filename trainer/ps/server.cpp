#include "trainer/ps/server.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "trainer/optim/optimizer.h"

namespace ringtrain::ps {

namespace {

using Clock = std::chrono::steady_clock;

// The partition as a module so that the checkpoint code (which saves modules) can save it.
class PartitionModule : public torch::nn::Module {
 public:
  explicit PartitionModule(int64_t elements) {
    partition = register_parameter("partition", torch::zeros({elements}, torch::kFloat32));
  }
  torch::Tensor partition;
};

}  // namespace

Server::Server(const Config& cfg, const Roles& roles, const Layout& layout, MPI_Comm psComm,
               MPI_Comm serverComm)
    : cfg_(cfg),
      roles_(roles),
      psComm_(psComm),
      serverComm_(serverComm),
      rank_(-1),
      serverIndex_(-1),
      numWorkers_(roles.numWorkers()),
      elements_(0),
      waiter_(cfg.distributed.timeout(), -1) {
  MPI_Comm_rank(psComm_, &rank_);
  waiter_ = PoliteWaiter(waiter_.timeout(), rank_);
  serverIndex_ = roles_.serverIndex(rank_);
  if (serverIndex_ < 0) {
    throw TrainingError("rank " + std::to_string(rank_) + " is not a parameter server", "", rank_);
  }
  elements_ = layout.partitionElements(serverIndex_);
  auto module = std::make_shared<PartitionModule>(elements_);
  partition_ = module->partition;
  module_ = module;
  optimizer_ = makeOptimizer(cfg_.optimizer, {partition_});
  if (cfg_.ps.consistency == "bsp") average_ = torch::zeros({elements_}, torch::kFloat32);

  for (int w = 0; w < numWorkers_; ++w) {
    inbox_.emplace_back(elements_);
    outbox_.emplace_back(elements_);
  }
  receives_.assign(static_cast<size_t>(numWorkers_), MPI_REQUEST_NULL);
  sends_.assign(static_cast<size_t>(numWorkers_), MPI_REQUEST_NULL);
  active_.assign(static_cast<size_t>(numWorkers_), true);
  clock_.assign(static_cast<size_t>(numWorkers_), 0);
  holdsPush_.assign(static_cast<size_t>(numWorkers_), false);
  heldReply_.assign(static_cast<size_t>(numWorkers_), false);
  syncing_.assign(static_cast<size_t>(numWorkers_), false);
  syncStep_.assign(static_cast<size_t>(numWorkers_), 0);
}

Server::~Server() {
  // Requests still posted after an error: cancel receives, let sends finish or be dropped.
  for (auto& r : receives_) {
    if (r != MPI_REQUEST_NULL) {
      MPI_Cancel(&r);
      MPI_Request_free(&r);
    }
  }
  for (auto& r : sends_) {
    if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
  }
}

TrainingError Server::protocolError(const std::string& message) const {
  return TrainingError("parameter server " + std::to_string(serverIndex_) + ": " + message,
                       "every rank must run the same ringtrain build and config", rank_);
}

ServerStats Server::serve() {
  const auto start = Clock::now();
  const double cpuStart = processCpuSeconds();
  for (int w = 0; w < numWorkers_; ++w) repost(w);
  while (std::count(active_.begin(), active_.end(), true) > 0) {
    MPI_Status status;
    const int w = waiter_.waitAny(receives_, &status, [this] { return describeWait(); });
    if (w == MPI_UNDEFINED) throw protocolError("nothing to wait for while workers are active");
    handle(w, status);
  }
  waiter_.waitAll(sends_, [] { return std::string("the last parameter replies to complete"); });
  stats_.wallSeconds = std::chrono::duration<double>(Clock::now() - start).count();
  stats_.cpuSeconds = processCpuSeconds() - cpuStart;
  return stats_;
}

std::string Server::describeWait() const {
  std::string waiting;
  for (int w = 0; w < numWorkers_; ++w) {
    if (receives_[static_cast<size_t>(w)] == MPI_REQUEST_NULL) continue;
    waiting +=
        (waiting.empty() ? "" : ", ") + std::to_string(roles_.workers[static_cast<size_t>(w)]);
  }
  return "a push, sync or done from worker rank(s) " + waiting + " (parameter server " +
         std::to_string(serverIndex_) + ", ps.consistency " + cfg_.ps.consistency + ")";
}

void Server::repost(int worker) {
  auto& request = receives_[static_cast<size_t>(worker)];
  request = irecv(inbox_[static_cast<size_t>(worker)], roles_.workers[static_cast<size_t>(worker)],
                  kTagToServer, psComm_, rank_);
}

void Server::reply(int worker, int64_t step) {
  const auto w = static_cast<size_t>(worker);
  // The previous answer must have left its buffer before the buffer is refilled.
  waiter_.wait(sends_[w], nullptr, [&] {
    return "the previous parameter reply to worker rank " + std::to_string(roles_.workers[w]) +
           " to complete";
  });
  {
    torch::NoGradGuard noGrad;
    outbox_[w].payload().copy_(partition_);
  }
  outbox_[w].setHeader({Kind::Params, step, 0, stats_.updates});
  sends_[w] = isend(outbox_[w], roles_.workers[w], kTagToWorker, psComm_, rank_);
}

void Server::handle(int worker, const MPI_Status& status) {
  const auto w = static_cast<size_t>(worker);
  const Header header = inbox_[w].header();
  const int64_t payload = receivedPayload(status, inbox_[w]);
  const bool needsPayload = header.kind == Kind::Init || header.kind == Kind::Push;
  if (needsPayload && payload != elements_) {
    throw protocolError(std::string(kindName(header.kind)) + " from worker rank " +
                        std::to_string(roles_.workers[w]) + " carries " + std::to_string(payload) +
                        " elements, the partition has " + std::to_string(elements_));
  }
  switch (header.kind) {
    case Kind::Init: {
      torch::NoGradGuard noGrad;
      partition_.copy_(inbox_[w].payload());
      initialised_ = true;
      repost(worker);
      tryCompleteSync();  // other workers' first syncs may have arrived before the Init
      return;
    }
    case Kind::Push: {
      if (!initialised_) throw protocolError("a push arrived before the initial parameters");
      ++stats_.pushes;
      totalSteps_ = header.value;
      clock_[w] = header.step + 1;
      if (cfg_.ps.consistency == "bsp") {
        holdsPush_[w] = true;  // its inbox holds the gradient until the step completes
        tryCompleteBspStep();
        return;
      }
      if (header.flags & kPushSkip) {
        ++stats_.skipped;
      } else {
        apply(inbox_[w].payload(), header.step, header.value);
      }
      repost(worker);
      if (cfg_.ps.consistency == "ssp" && !mayStart(worker)) {
        heldReply_[w] = true;
        ++stats_.heldReplies;
      } else {
        reply(worker, header.step);
      }
      releaseHeldReplies();
      return;
    }
    case Kind::Sync:
      syncing_[w] = true;
      syncStep_[w] = header.step;
      syncFlags_ |= header.flags;
      repost(worker);
      tryCompleteSync();
      return;
    case Kind::Done:
      active_[w] = false;
      if (cfg_.ps.consistency == "bsp") tryCompleteBspStep();
      releaseHeldReplies();
      tryCompleteSync();
      return;
    case Kind::Params:
      break;
  }
  throw protocolError("unexpected message kind " +
                      std::to_string(static_cast<int64_t>(header.kind)) + " from worker rank " +
                      std::to_string(roles_.workers[w]));
}

int64_t Server::minActiveClock() const {
  int64_t lowest = std::numeric_limits<int64_t>::max();
  for (int w = 0; w < numWorkers_; ++w) {
    if (active_[static_cast<size_t>(w)]) lowest = std::min(lowest, clock_[static_cast<size_t>(w)]);
  }
  return lowest;
}

// A worker that has finished clock_[w] steps may start step clock_[w] only when every
// active worker has finished step clock_[w] - staleness - 1.
bool Server::mayStart(int worker) const {
  return minActiveClock() >= clock_[static_cast<size_t>(worker)] - cfg_.ps.staleness;
}

void Server::releaseHeldReplies() {
  int64_t highest = 0;
  for (int w = 0; w < numWorkers_; ++w) {
    if (active_[static_cast<size_t>(w)])
      highest = std::max(highest, clock_[static_cast<size_t>(w)]);
  }
  if (std::count(active_.begin(), active_.end(), true) > 0) {
    stats_.maxClockGap = std::max(stats_.maxClockGap, highest - minActiveClock());
  }
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (heldReply_[i] && (!active_[i] || mayStart(w))) {
      heldReply_[i] = false;
      if (active_[i]) reply(w, clock_[i] - 1);
    }
  }
}

void Server::tryCompleteBspStep() {
  int held = 0;
  int64_t step = -1;
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (!holdsPush_[i]) continue;
    const int64_t pushed = inbox_[i].header().step;
    if (step >= 0 && pushed != step) {
      throw protocolError("under bsp, worker rank " + std::to_string(roles_.workers[i]) +
                          " pushed step " + std::to_string(pushed) + " while another pushed step " +
                          std::to_string(step));
    }
    step = pushed;
    ++held;
  }
  if (held == 0) return;
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (active_[i] && !holdsPush_[i]) {
      if (syncing_[i]) {
        throw protocolError("under bsp, worker rank " + std::to_string(roles_.workers[i]) +
                            " synced at step " + std::to_string(syncStep_[i]) +
                            " while others pushed step " + std::to_string(step));
      }
      return;  // still waiting for this worker's gradient
    }
  }
  // Every active worker pushed step `step`: average in worker order. Each gradient is scaled
  // by 1/count before the sum, as GradientSynchronizer does, so the rounding matches.
  const double scale = 1.0 / held;
  bool first = true;
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (!holdsPush_[i]) continue;
    auto gradient = inbox_[i].payload();
    gradient.mul_(scale);
    if (first) {
      average_.copy_(gradient);
      first = false;
    } else {
      average_.add_(gradient);
    }
  }
  apply(average_, step, totalSteps_);
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (!holdsPush_[i]) continue;
    holdsPush_[i] = false;
    repost(w);
    if (active_[i]) reply(w, step);
  }
}

void Server::tryCompleteSync() {
  if (!initialised_) return;  // the first worker's Init is still on its way
  int64_t step = -1;
  int syncing = 0;
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (!active_[i]) continue;
    if (!syncing_[i]) return;
    if (step >= 0 && syncStep_[i] != step) {
      throw protocolError("workers synced at different steps (" + std::to_string(step) + " and " +
                          std::to_string(syncStep_[i]) + ")");
    }
    step = syncStep_[i];
    ++syncing;
  }
  if (syncing == 0) return;
  if ((syncFlags_ & kSyncCheckpoint) && writer_) writer_(step, *module_, *optimizer_);
  syncFlags_ = 0;
  for (int w = 0; w < numWorkers_; ++w) {
    const auto i = static_cast<size_t>(w);
    if (!syncing_[i]) continue;
    syncing_[i] = false;
    clock_[i] = step;
    reply(w, step);
  }
}

double Server::globalSquaredNorm(const torch::Tensor& gradient) {
  double squared = gradient.to(torch::kFloat64).pow(2).sum().item<double>();
  if (roles_.numServers() == 1) return squared;
  double total = 0.0;
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Iallreduce(&squared, &total, 1, MPI_DOUBLE, MPI_SUM, serverComm_, &request),
           "MPI_Iallreduce (gradient norm across servers)", rank_);
  waiter_.wait(request, nullptr, [] { return std::string("the other servers' gradient norms"); });
  return total;
}

void Server::apply(const torch::Tensor& gradient, int64_t step, int64_t totalSteps) {
  torch::NoGradGuard noGrad;
  const bool bsp = cfg_.ps.consistency == "bsp";
  // Under bsp every server sees the same global norm and so decides alike; asp/ssp pushes
  // were already clipped by their worker, and each server checks its own part.
  double scale = 1.0;
  bool finite = true;
  if (bsp) {
    const double norm = std::sqrt(globalSquaredNorm(gradient));
    finite = std::isfinite(norm);
    const double clip = cfg_.train.grad_clip_norm;
    if (finite && clip > 0.0 && norm + 1e-6 > clip) scale = clip / (norm + 1e-6);
  } else {
    finite = torch::isfinite(gradient).all().item<bool>();
    // W workers push W gradients per step, each applied on its own: scaled by 1/W, they
    // add up to the one averaged update of bsp or all-reduce, so a config (learning rate,
    // momentum) that trains in those modes trains here too. Unscaled, SGD with momentum at
    // an all-reduce learning rate diverged with 3 workers (bench/RESULTS.md).
    scale = 1.0 / numWorkers_;
  }
  if (!finite) {
    if (cfg_.train.on_nonfinite == "skip") {
      ++stats_.skipped;
      return;
    }
    throw TrainingError("non-finite gradient at step " + std::to_string(step) +
                            " on parameter server " + std::to_string(serverIndex_),
                        "lower optimizer.lr, set train.grad_clip_norm, or set "
                        "train.on_nonfinite: skip",
                        rank_);
  }
  partition_.mutable_grad() = scale == 1.0 ? gradient : gradient * scale;
  setLearningRate(*optimizer_, scheduledLearningRate(cfg_.schedule, cfg_.optimizer.lr, step,
                                                     std::max<int64_t>(totalSteps, 1)));
  optimizer_->step();
  partition_.mutable_grad() = torch::Tensor();
  ++stats_.updates;
}

}  // namespace ringtrain::ps
