#include "data/loader.h"

#include <string>
#include <utility>

#include "core/error.h"

namespace ringtrain {

Loader::Loader(DatasetPtr dataset, ShardSampler sampler, int64_t prefetch, LoaderCursor start)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), prefetch_(prefetch) {
  if (!dataset_) throw DataError("Loader: no dataset given", {}, sampler_.rank());
  if (prefetch_ < 1) {
    throw ConfigError("data.prefetch must be >= 1, got " + std::to_string(prefetch_),
                      "set data.prefetch to the number of batches to prepare ahead, e.g. 4",
                      sampler_.rank());
  }
  if (dataset_->size() != sampler_.datasetSize()) {
    throw DataError("Loader: the sampler covers " + std::to_string(sampler_.datasetSize()) +
                        " samples but the dataset holds " + std::to_string(dataset_->size()),
                    "build the ShardSampler from the same dataset's size()", sampler_.rank());
  }
  startEpoch(start.epoch, start.step);
}

Loader::~Loader() { stopProducer(); }

void Loader::stopProducer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  spaceReady_.notify_all();
  if (producer_.joinable()) producer_.join();
}

void Loader::startEpoch(int64_t epoch, int64_t fromStep) {
  if (epoch < 0 || fromStep < 0 || fromStep > stepsPerEpoch()) {
    throw ConfigError("Loader: cannot start at epoch " + std::to_string(epoch) + ", step " +
                          std::to_string(fromStep) + ": an epoch has steps [0, " +
                          std::to_string(stepsPerEpoch()) + "]",
                      "resume from a checkpoint written with the same data.batch_size, "
                      "dataset and number of ranks",
                      sampler_.rank());
  }
  stopProducer();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    error_ = nullptr;
    stop_ = false;
    cursor_ = {epoch, fromStep};
  }
  producer_ = std::thread(&Loader::produce, this, epoch, fromStep);
}

void Loader::produce(int64_t epoch, int64_t fromStep) {
  // An exception must not escape a thread function (std::terminate): anything thrown while
  // preparing a batch is handed to the consumer instead, after the batches before it.
  try {
    // Batches are inputs, not graph nodes: keep autograd out of the producer.
    torch::NoGradGuard noGrad;
    for (int64_t step = fromStep; step < stepsPerEpoch(); ++step) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        spaceReady_.wait(lock,
                         [&] { return stop_ || static_cast<int64_t>(queue_.size()) < prefetch_; });
        if (stop_) return;
      }
      // Gather outside the lock so the consumer can take earlier batches meanwhile.
      Batch batch = dataset_->get(sampler_.indices(epoch, step));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
        queue_.push_back(std::move(batch));
      }
      batchReady_.notify_one();
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    batchReady_.notify_one();
  }
}

std::optional<Batch> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (cursor_.step >= stepsPerEpoch()) return std::nullopt;
  batchReady_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  Batch batch = std::move(queue_.front());
  queue_.pop_front();
  ++cursor_.step;
  lock.unlock();
  spaceReady_.notify_one();
  return batch;
}

LoaderCursor Loader::cursor() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cursor_;
}

}  // namespace ringtrain
