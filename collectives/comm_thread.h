// One background thread that runs collective operations in FIFO order. Every rank enqueues
// its collectives in program order, so they reach MPI in the same order everywhere (MPI
// requires that for collectives on one communicator), while the caller keeps computing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "collectives/communicator.h"

namespace ringtrain {

// The Work handed out by CommThread: completion is signalled by the thread, waited for with a
// deadline on a condition variable.
class QueuedWork : public Work {
 public:
  // `progress`, if set, is asked on timeout where the operation is stuck (e.g. which
  // neighbour the ring waits for); it is called from the waiting thread.
  QueuedWork(std::string description, int rank, std::function<std::string()> progress);

  bool isCompleted() override;
  void wait(std::chrono::milliseconds timeout) override;
  std::string describe() const override { return description_; }
  std::optional<WorkTimes> times() const override;

  // Called by the thread: when it takes the operation from the queue, and when it is done.
  void start();
  void finish(std::exception_ptr error);

 private:
  const std::string description_;
  const int rank_;
  const std::function<std::string()> progress_;
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  WorkTimes times_;
  std::exception_ptr error_;
};

class CommThread {
 public:
  explicit CommThread(int rank);
  // Runs what is queued, then joins. An operation that never completes (a dead peer) blocks
  // this forever: after a TimeoutError the caller should abort the job, not unwind.
  ~CommThread();
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  // Queues `op`; its CommError (or any exception, wrapped as CommError) becomes the Work's
  // error. After one operation fails every later one fails at once with the same cause,
  // since the ranks can no longer be in step and a later collective would only hang.
  WorkPtr enqueue(std::string description, std::function<void()> op,
                  std::function<std::string()> progress = {});

 private:
  struct Item {
    std::shared_ptr<QueuedWork> work;
    std::function<void()> op;
  };

  void run();

  const int rank_;
  std::mutex mutex_;
  std::condition_variable queue_cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::string firstFailure_;  // only touched by the thread
  std::thread thread_;        // last: starts after every other member exists
};

}  // namespace ringtrain
