// DataParallel: ringtrain's gradient averaging for a training loop the user writes.
//
//   ringtrain::MpiContext mpi(&argc, &argv);
//   auto comm = ringtrain::makeCommunicator("ring", MPI_COMM_WORLD);
//   auto model = std::make_shared<Net>();
//   ringtrain::DataParallel dp(*comm, model);      // every rank now holds rank 0's weights
//   for (auto& batch : *loader) {                   // loader over a ShardedSampler
//     optimizer.zero_grad();
//     loss_fn(model->forward(batch.data), batch.target).backward();
//     dp.synchronize();                             // .grad is now the average over ranks
//     optimizer.step();
//   }
//
// Backward works as in the Trainer (trainer/allreduce/grad_sync.h): gradients land in
// persistent buckets, filled in reverse registration order, and each bucket's all-reduce
// starts during backward as soon as its last gradient arrived; synchronize() sends what is
// left and waits. The averages are bitwise the Trainer's for the same buckets.
//
// Several backward passes per step (gradient accumulation, a GAN's discriminator that sees a
// real and a fake batch): wrap all but the last in a noSync() scope, as with DDP's no_sync().
// Their gradients accumulate locally; the last backward sends the sum. A backward that reaches
// an already-sent parameter without noSync() throws TrainingError naming noSync(), instead of
// sending a mix. A backward whose gradients are not wanted (a generator's backward that passes
// through the discriminator) goes in a noSync() scope of the discriminator too, or runs with
// the discriminator's parameters set to requires_grad(false).
//
// Parameters that get no gradient in a step (a branch not taken) contribute zeros and receive
// the average like any other, so no rank waits for a gradient that never comes. Parameters
// created with requires_grad(false) are neither averaged nor broadcast-checked for gradients.
//
// Several modules (a GAN's generator and discriminator; an encoder shared by two heads) either
// get one DataParallel each on one communicator, used in separate phases (backward of one,
// synchronize(), then the other), or one DataParallel over all of them when one backward
// reaches several: the buckets of different DataParallels must not be in flight at once,
// since every rank has to issue collectives in the same order.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "trainer/allreduce/grad_sync.h"

namespace ringtrain {

struct DataParallelOptions {
  double bucketMb = 25.0;      // as distributed.bucket_mb
  double firstBucketMb = 1.0;  // smaller, so that the first all-reduce starts early
  bool overlap = true;         // all-reduce during backward (false: all in synchronize())
  GradCompression compression = GradCompression::None;         // bf16 / fp16 on the wire
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // per collective
};

class DataParallel {
 public:
  using ModulePtr = std::shared_ptr<torch::nn::Module>;

  // Collective. Checks that every rank wraps the same parameters and buffers (names, shapes,
  // dtypes; TrainingError naming the first difference otherwise), then copies rank 0's values
  // into every rank. The modules must outlive the DataParallel, and the optimizer must be
  // built over the same parameters.
  DataParallel(Communicator& comm, ModulePtr module, DataParallelOptions options = {});
  DataParallel(Communicator& comm, std::vector<ModulePtr> modules,
               DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Collective: after the step's last backward, before optimizer.step(). Every parameter's
  // .grad becomes the average over ranks of what backward accumulated since the last call.
  void synchronize();

  // Backward passes while a NoSync lives keep their gradients local (accumulation).
  class NoSync {
   public:
    explicit NoSync(DataParallel& owner);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& owner_;
  };
  [[nodiscard]] NoSync noSync() { return NoSync(*this); }

  // Collective: copies rank 0's buffers (BatchNorm's running statistics) to every rank, as
  // DDP's broadcast_buffers does before each forward; call it where the loop wants them equal
  // (before evaluating, before saving).
  void broadcastBuffers();

  // Steps synchronised so far (used in error messages).
  int64_t steps() const { return steps_; }
  const std::vector<BucketLayout>& buckets() const { return sync_->layout(); }
  Communicator& communicator() { return comm_; }

 private:
  void armNextBackward();

  Communicator& comm_;
  DataParallelOptions options_;
  ModulePtr root_;  // the single module, or a holder of several ("0.", "1." prefixes)
  int64_t steps_ = 0;
  int noSyncDepth_ = 0;
  std::unique_ptr<GradientSynchronizer> sync_;
};

}  // namespace ringtrain
