#include "trainer/ps/worker.h"

#include <chrono>

#include "core/error.h"

namespace ringtrain::ps {

Worker::Worker(const Config& cfg, const Roles& roles, const Layout& layout, MPI_Comm psComm,
               std::vector<torch::Tensor> parameters, bool overlap)
    : roles_(roles),
      layout_(layout),
      psComm_(psComm),
      rank_(-1),
      waiter_(cfg.distributed.timeout(), -1),
      parameters_(std::move(parameters)),
      overlap_(overlap) {
  MPI_Comm_rank(psComm_, &rank_);
  waiter_ = PoliteWaiter(waiter_.timeout(), rank_);
  if (roles_.workerIndex(rank_) < 0) {
    throw TrainingError("rank " + std::to_string(rank_) + " is not a parameter-server worker", "",
                        rank_);
  }
  if (parameters_.size() != layout_.parameters().size()) {
    throw TrainingError("the model has " + std::to_string(parameters_.size()) +
                            " parameters, the parameter-server layout " +
                            std::to_string(layout_.parameters().size()),
                        "build the layout from the same model", rank_);
  }
  pieces_.resize(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].numel() != layout_.parameters()[i].numel) {
      throw TrainingError("parameter '" + layout_.parameters()[i].name +
                              "' does not match the parameter-server layout",
                          "build the layout from the same model", rank_);
    }
    flat_.push_back(parameters_[i].detach().view({-1}));
  }
  const int servers = layout_.numServers();
  for (int s = 0; s < servers; ++s) {
    for (const auto& slice : layout_.slicesOf(s)) {
      pieces_[static_cast<size_t>(slice.parameter)].emplace_back(s, slice);
    }
    outbox_.emplace_back(layout_.partitionElements(s));
    inbox_.emplace_back(layout_.partitionElements(s));
    control_.emplace_back(0);
  }
  sends_.assign(static_cast<size_t>(servers), MPI_REQUEST_NULL);
  controlSends_.assign(static_cast<size_t>(servers), MPI_REQUEST_NULL);
  receives_.assign(static_cast<size_t>(servers), MPI_REQUEST_NULL);
  packed_.assign(parameters_.size(), false);
  piecesLeft_.assign(static_cast<size_t>(servers), 0);
  sent_.assign(static_cast<size_t>(servers), false);
  if (overlap_) {
    // A frozen parameter gets no gradient (and takes no hook): pushAndPull packs zeros.
    std::vector<size_t> hooked;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (parameters_[i].requires_grad()) hooked.push_back(i);
    }
    hooks_ = std::make_unique<AccumulatedGradHooks>(parameters_, hooked,
                                                    [this](size_t i) { onGradientAccumulated(i); });
  }
}

Worker::~Worker() {
  hooks_.reset();
  for (auto& r : receives_) {
    if (r != MPI_REQUEST_NULL) {
      MPI_Cancel(&r);
      MPI_Request_free(&r);
    }
  }
  for (auto* requests : {&sends_, &controlSends_}) {
    for (auto& r : *requests) {
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    }
  }
}

void Worker::sendInitial() {
  torch::NoGradGuard noGrad;
  for (int s = 0; s < layout_.numServers(); ++s) {
    for (const auto& slice : layout_.slicesOf(s)) {
      outbox_[static_cast<size_t>(s)]
          .payload()
          .narrow(0, slice.serverOffset, slice.length)
          .copy_(flat_[static_cast<size_t>(slice.parameter)].narrow(0, slice.offset, slice.length));
    }
    outbox_[static_cast<size_t>(s)].setHeader({Kind::Init, 0, 0, 0});
    sends_[static_cast<size_t>(s)] =
        isend(outbox_[static_cast<size_t>(s)], serverRank(s), kTagToServer, psComm_, rank_);
  }
}

void Worker::postReceives() {
  for (int s = 0; s < layout_.numServers(); ++s) {
    auto& request = receives_[static_cast<size_t>(s)];
    if (request != MPI_REQUEST_NULL) {
      throw TrainingError("a parameter answer from server rank " + std::to_string(serverRank(s)) +
                              " is still outstanding",
                          "push, pull and sync must alternate", rank_);
    }
    request = irecv(inbox_[static_cast<size_t>(s)], serverRank(s), kTagToWorker, psComm_, rank_);
  }
}

void Worker::beginBackward(int64_t step, int64_t totalSteps) {
  if (!overlap_) return;
  step_ = step;
  totalSteps_ = totalSteps;
  flags_ = 0;
  std::fill(packed_.begin(), packed_.end(), false);
  std::fill(sent_.begin(), sent_.end(), false);
  for (int s = 0; s < layout_.numServers(); ++s) {
    piecesLeft_[static_cast<size_t>(s)] = static_cast<int64_t>(layout_.slicesOf(s).size());
  }
  postReceives();
  armed_ = true;
}

void Worker::onGradientAccumulated(size_t parameter) {
  if (!armed_ || packed_[parameter]) return;
  // Runs after autograd's addition: .grad holds this backward's and earlier micro-batches'.
  pack(parameter, parameters_[parameter].grad());
  for (const auto& [server, slice] : pieces_[parameter]) {
    if (--piecesLeft_[static_cast<size_t>(server)] == 0) sendPush(server);
  }
}

void Worker::pack(size_t parameter, const torch::Tensor& gradient) {
  torch::NoGradGuard noGrad;
  for (const auto& [server, slice] : pieces_[parameter]) {
    const auto s = static_cast<size_t>(server);
    // The buffer may still be leaving with the previous push.
    waiter_.wait(sends_[s], nullptr, [&] {
      return "the previous push to server rank " + std::to_string(serverRank(server)) +
             " to complete";
    });
    auto destination = outbox_[s].payload().narrow(0, slice.serverOffset, slice.length);
    if (gradient.defined()) {
      destination.copy_(gradient.reshape({-1}).narrow(0, slice.offset, slice.length));
    } else {
      destination.zero_();
    }
  }
  packed_[parameter] = true;
}

void Worker::sendPush(int server) {
  const auto s = static_cast<size_t>(server);
  outbox_[s].setHeader({Kind::Push, step_, flags_, totalSteps_});
  sends_[s] = isend(outbox_[s], serverRank(server), kTagToServer, psComm_, rank_);
  sent_[s] = true;
}

void Worker::pushAndPull(int64_t step, int64_t totalSteps, bool skip) {
  if (!armed_) {
    step_ = step;
    totalSteps_ = totalSteps;
    std::fill(packed_.begin(), packed_.end(), false);
    std::fill(sent_.begin(), sent_.end(), false);
    postReceives();
  } else if (step != step_) {
    throw TrainingError("pushAndPull(" + std::to_string(step) + ") after beginBackward(" +
                            std::to_string(step_) + ")",
                        "", rank_);
  }
  armed_ = false;
  flags_ = skip ? kPushSkip : 0;
  // Parameters whose hook did not fire (no overlap, or no gradient this step).
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!packed_[i]) pack(i, parameters_[i].grad());
  }
  for (int s = 0; s < layout_.numServers(); ++s) {
    if (!sent_[static_cast<size_t>(s)]) sendPush(s);
  }
  receiveParameters("push", step);
}

void Worker::receiveParameters(const char* after, int64_t step) {
  torch::NoGradGuard noGrad;
  for (;;) {
    MPI_Status status;
    const int s = waiter_.waitAny(receives_, &status, [&] {
      std::string servers;
      for (size_t i = 0; i < receives_.size(); ++i) {
        if (receives_[i] == MPI_REQUEST_NULL) continue;
        servers += (servers.empty() ? "" : ", ") + std::to_string(roles_.servers[i]);
      }
      return "parameters from server rank(s) " + servers + " after its " + after + " of step " +
             std::to_string(step);
    });
    if (s == MPI_UNDEFINED) return;
    auto& message = inbox_[static_cast<size_t>(s)];
    const Header header = message.header();
    if (header.kind != Kind::Params ||
        receivedPayload(status, message) != message.payloadElements()) {
      throw TrainingError("malformed answer (" + std::string(kindName(header.kind)) +
                              ") from server rank " + std::to_string(serverRank(s)),
                          "every rank must run the same ringtrain build and config", rank_);
    }
    if (s == 0) serverUpdates_ = header.value;
    for (const auto& slice : layout_.slicesOf(s)) {
      flat_[static_cast<size_t>(slice.parameter)]
          .narrow(0, slice.offset, slice.length)
          .copy_(message.payload().narrow(0, slice.serverOffset, slice.length));
    }
  }
}

void Worker::sendControl(Kind kind, int64_t step, int64_t flags) {
  for (int s = 0; s < layout_.numServers(); ++s) {
    const auto i = static_cast<size_t>(s);
    waiter_.wait(controlSends_[i], nullptr, [&] {
      return "the previous control message to server rank " + std::to_string(serverRank(s)) +
             " to complete";
    });
    control_[i].setHeader({kind, step, flags, 0});
    controlSends_[i] = isend(control_[i], serverRank(s), kTagToServer, psComm_, rank_);
  }
}

void Worker::sync(int64_t step, bool checkpoint) {
  if (armed_) throw TrainingError("sync while a push is being assembled", "", rank_);
  postReceives();
  sendControl(Kind::Sync, step, checkpoint ? kSyncCheckpoint : 0);
  receiveParameters("sync", step);
}

void Worker::finish() {
  sendControl(Kind::Done, 0, 0);
  waiter_.waitAll(controlSends_, [] { return std::string("the done messages to complete"); });
  waiter_.waitAll(sends_, [] { return std::string("the last pushes to complete"); });
}

}  // namespace ringtrain::ps
