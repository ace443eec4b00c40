// The worker side of the parameter-server protocol (see ps_protocol.h): packs this worker's
// gradients into one message per server, pushes them, and writes the servers' answers back
// into the model's parameters.
//
// Every transfer is non-blocking and the servers proceed independently: a push goes to all
// servers at once and the answers are unpacked in the order they arrive. With overlap on, a
// hook on every parameter packs its gradient the moment backward produces it, and a server's
// message leaves as soon as all of its slices are packed, while backward still computes the
// gradients of earlier layers (which live on earlier servers).
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "trainer/allreduce/grad_hooks.h"
#include "trainer/config/config.h"
#include "trainer/ps/layout.h"
#include "trainer/ps/protocol.h"

namespace ringtrain::ps {

class Worker {
 public:
  // `psComm` spans the world (outlives the worker). `parameters` are the model's, in the
  // order the layout was built from.
  Worker(const Config& cfg, const Roles& roles, const Layout& layout, MPI_Comm psComm,
         std::vector<torch::Tensor> parameters, bool overlap);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Fresh runs, first worker only: its parameters become the servers' initial partitions.
  void sendInitial();
  // Call before the backward of the last micro-batch of `step`: arms the gradient hooks so
  // that each server's part leaves as soon as it is complete. A no-op without overlap.
  void beginBackward(int64_t step, int64_t totalSteps);
  // Pushes the gradients (.grad; an undefined gradient counts as zeros) of `step` to every
  // server the hooks have not served yet, waits for the answers and writes them into the
  // parameters. `skip` asks the servers to count the step without applying it.
  void pushAndPull(int64_t step, int64_t totalSteps, bool skip = false);
  // Barrier of all active workers through the servers at `step`: returns once every one of
  // them synced and everything pushed before is applied; the parameters are then the
  // servers' current values, identical on every worker. With `checkpoint`, the servers save
  // their partitions before they answer.
  void sync(int64_t step, bool checkpoint);
  // Tells the servers that this worker sends nothing more.
  void finish();

  // Optimizer steps server 0 had applied when it last answered.
  int64_t serverUpdates() const { return serverUpdates_; }

 private:
  void onGradientAccumulated(size_t parameter);
  void pack(size_t parameter, const torch::Tensor& gradient);
  void sendPush(int server);
  void postReceives();
  void receiveParameters(const char* after, int64_t step);
  void sendControl(Kind kind, int64_t step, int64_t flags);
  int serverRank(int server) const { return roles_.servers[static_cast<size_t>(server)]; }

  Roles roles_;
  const Layout& layout_;
  MPI_Comm psComm_;
  int rank_;
  PoliteWaiter waiter_;
  std::vector<torch::Tensor> parameters_;
  std::vector<torch::Tensor> flat_;  // views of the parameters, flattened
  // Per parameter: (server, slice) pieces.
  std::vector<std::vector<std::pair<int, Slice>>> pieces_;
  std::unique_ptr<AccumulatedGradHooks> hooks_;
  bool overlap_;

  std::vector<Message> outbox_;   // per server: gradient pushes and Init
  std::vector<Message> control_;  // per server: Sync and Done (header only)
  std::vector<Message> inbox_;    // per server: parameter answers
  std::vector<MPI_Request> sends_;
  std::vector<MPI_Request> controlSends_;
  std::vector<MPI_Request> receives_;

  // State of the push being assembled.
  bool armed_ = false;
  int64_t step_ = 0;
  int64_t totalSteps_ = 0;
  int64_t flags_ = 0;
  std::vector<bool> packed_;         // per parameter
  std::vector<int64_t> piecesLeft_;  // per server
  std::vector<bool> sent_;           // per server
  int64_t serverUpdates_ = 0;
};

}  // namespace ringtrain::ps
