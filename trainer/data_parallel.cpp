#include "trainer/data_parallel.h"

#include <string>

#include "core/error.h"
#include "trainer/allreduce/replicas.h"
#include "trainer/deadlines.h"
#include "trainer/sync/fingerprint.h"

namespace ringtrain {

namespace {

// Several modules under one root, named as torch.nn.ModuleList names its items.
DataParallel::ModulePtr holderOf(const std::vector<DataParallel::ModulePtr>& modules, int rank) {
  if (modules.empty()) {
    throw ConfigError("DataParallel was given no module", "pass the modules to train", rank);
  }
  if (modules.size() == 1) return modules.front();
  auto holder = std::make_shared<torch::nn::Module>("DataParallel");
  for (size_t i = 0; i < modules.size(); ++i) {
    if (!modules[i]) {
      throw ConfigError("DataParallel module " + std::to_string(i) + " is null",
                        "pass constructed modules", rank);
    }
    holder->register_module(std::to_string(i), modules[i]);
  }
  return holder;
}

GradSyncOptions syncOptions(const DataParallelOptions& options) {
  GradSyncOptions sync;
  sync.bucketMb = options.bucketMb;
  sync.firstBucketMb = options.firstBucketMb;
  sync.overlap = options.overlap;
  sync.compression = options.compression;
  sync.timeout = options.timeout;
  return sync;
}

}  // namespace

DataParallel::DataParallel(Communicator& comm, ModulePtr module, DataParallelOptions options)
    : DataParallel(comm, std::vector<ModulePtr>{std::move(module)}, options) {}

DataParallel::DataParallel(Communicator& comm, std::vector<ModulePtr> modules,
                           DataParallelOptions options)
    : comm_(comm), options_(options), root_(holderOf(modules, comm.rank())) {
  if (!root_) throw ConfigError("DataParallel was given a null module", "", comm_.rank());
  // The bucket allocation is collective but sized per rank, so it returns on every rank even
  // when the modules differ; the fingerprint check then names the difference.
  sync_ = std::make_unique<GradientSynchronizer>(comm_, root_->parameters(), syncOptions(options_));
  checkFingerprintsMatch(syncFingerprint(*root_, sync_->layout()), comm_,
                         startupTimeout(options_.timeout), "DataParallel construction");
  broadcastFromRankZero(comm_, *root_, options_.timeout);
}

DataParallel::~DataParallel() = default;

void DataParallel::synchronize() {
  sync_->synchronize(steps_);
  ++steps_;
  armNextBackward();
}

void DataParallel::armNextBackward() { sync_->prepareBackward(steps_, noSyncDepth_ == 0); }

void DataParallel::broadcastBuffers() {
  torch::NoGradGuard noGrad;
  for (auto& b : root_->buffers()) {
    auto t = b.detach();
    comm_.broadcast(t, 0)->wait(options_.timeout);
  }
}

DataParallel::NoSync::NoSync(DataParallel& owner) : owner_(owner) {
  ++owner_.noSyncDepth_;
  owner_.armNextBackward();
}

DataParallel::NoSync::~NoSync() {
  --owner_.noSyncDepth_;
  owner_.armNextBackward();
}

}  // namespace ringtrain
