#include "collectives/comm_thread.h"

#include <utility>

#include "core/error.h"

namespace ringtrain {

QueuedWork::QueuedWork(std::string description, int rank, std::function<std::string()> progress)
    : description_(std::move(description)), rank_(rank), progress_(std::move(progress)) {}

bool QueuedWork::isCompleted() {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void QueuedWork::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!done_cv_.wait_for(lock, timeout, [this] { return done_; })) {
    lock.unlock();
    std::string message =
        description_ + " did not complete within " + std::to_string(timeout.count()) + " ms";
    if (progress_) message += "; " + progress_();
    throw TimeoutError(message,
                       "another rank is stuck, slower, or dead, or issued its collectives in "
                       "a different order; check the other ranks' logs, or raise timeout_s "
                       "if a step is legitimately this slow",
                       rank_);
  }
  if (error_) std::rethrow_exception(error_);
}

std::optional<WorkTimes> QueuedWork::times() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!done_) return std::nullopt;
  return times_;
}

void QueuedWork::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  times_.started = std::chrono::steady_clock::now();
}

void QueuedWork::finish(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    times_.completed = std::chrono::steady_clock::now();
    done_ = true;
    error_ = std::move(error);
  }
  done_cv_.notify_all();
}

CommThread::CommThread(int rank) : rank_(rank), thread_([this] { run(); }) {}

CommThread::~CommThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  thread_.join();
}

WorkPtr CommThread::enqueue(std::string description, std::function<void()> op,
                            std::function<std::string()> progress) {
  auto work = std::make_shared<QueuedWork>(std::move(description), rank_, std::move(progress));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back({work, std::move(op)});
  }
  queue_cv_.notify_one();
  return work;
}

void CommThread::run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    item.work->start();
    std::exception_ptr error;
    if (!firstFailure_.empty()) {
      error = std::make_exception_ptr(CommError(
          item.work->describe() + " skipped: an earlier collective failed (" + firstFailure_ + ")",
          "fix the first communication error; the ranks are out of step after it", rank_));
    } else {
      try {
        item.op();
      } catch (const Error& e) {
        firstFailure_ = e.what();
        error = std::current_exception();
      } catch (const std::exception& e) {
        firstFailure_ = e.what();
        error = std::make_exception_ptr(
            CommError(item.work->describe() + " failed: " + e.what(), {}, rank_));
      }
    }
    item.work->finish(error);
  }
}

}  // namespace ringtrain
