// Streaming batch loader: a background thread gathers the next batches of this rank's shard
// (bounded queue of `prefetch` batches) while the model computes on the current one.
//
// The loader walks one epoch at a time: next() returns the batches of the current epoch in
// step order, then std::nullopt; startEpoch() moves it to another epoch (or another step of
// the same one). The (epoch, step) cursor can be saved in a checkpoint and passed back in to
// resume mid-epoch with exactly the batches that were still to come.
//
// Threading: one producer thread per epoch walk, one mutex guarding the queue and cursor,
// and two condition variables (space in the queue / a batch or an error is ready). The
// public methods are meant to be called from one consumer thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/dataset.h"
#include "data/sharding.h"

namespace ringtrain {

// The position of the next batch: step `step` of epoch `epoch`. step == stepsPerEpoch means
// the epoch is finished.
struct LoaderCursor {
  int64_t epoch = 0;
  int64_t step = 0;
};

inline bool operator==(const LoaderCursor& a, const LoaderCursor& b) {
  return a.epoch == b.epoch && a.step == b.step;
}
inline bool operator!=(const LoaderCursor& a, const LoaderCursor& b) { return !(a == b); }

class Loader {
 public:
  // Starts preparing batches at `start` right away. Throws ConfigError when prefetch < 1 or
  // `start` is not a valid cursor, DataError when the sampler was built for a dataset of
  // another size.
  Loader(DatasetPtr dataset, ShardSampler sampler, int64_t prefetch, LoaderCursor start = {});
  // Stops the producer and waits for it; never blocks on a consumer that stopped early.
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch of the current epoch, or std::nullopt once the epoch is done (and on
  // every later call until startEpoch()). An exception the producer hit while preparing
  // this batch is rethrown here, and again on every later call until startEpoch().
  std::optional<Batch> next();

  // Drops anything prepared and starts walking `epoch` from `fromStep`, which may be
  // stepsPerEpoch (an already finished epoch: next() returns std::nullopt).
  void startEpoch(int64_t epoch, int64_t fromStep = 0);

  // Where the next batch next() returns comes from.
  LoaderCursor cursor() const;

  const ShardSampler& sampler() const { return sampler_; }
  int64_t stepsPerEpoch() const { return sampler_.stepsPerEpoch(); }
  int64_t prefetch() const { return prefetch_; }

 private:
  void produce(int64_t epoch, int64_t fromStep);
  void stopProducer();

  const DatasetPtr dataset_;
  const ShardSampler sampler_;
  const int64_t prefetch_;

  mutable std::mutex mutex_;
  std::condition_variable spaceReady_;  // the queue has room, or stop_ was set
  std::condition_variable batchReady_;  // a batch or an error arrived
  std::deque<Batch> queue_;
  std::exception_ptr error_;  // the producer's failure, after the batches it did prepare
  bool stop_ = false;
  LoaderCursor cursor_;
  std::thread producer_;  // last member: started after everything it uses exists
};

}  // namespace ringtrain
