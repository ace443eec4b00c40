#include "collectives/communicator.h"

#include <functional>
#include <mutex>
#include <utility>

namespace ringtrain {
namespace {

// A Work that runs `then` once, on the first waiter, after `inner` completed: for a collective
// whose result needs a local step afterwards (the padded all-gather's copy out).
class ContinuedWork : public Work {
 public:
  ContinuedWork(WorkPtr inner, std::function<void()> then)
      : inner_(std::move(inner)), then_(std::move(then)) {}

  bool isCompleted() override { return inner_->isCompleted(); }
  void wait(std::chrono::milliseconds timeout) override {
    inner_->wait(timeout);
    std::call_once(once_, then_);
  }
  std::string describe() const override { return inner_->describe(); }
  std::optional<WorkTimes> times() const override { return inner_->times(); }

 private:
  WorkPtr inner_;
  std::function<void()> then_;
  std::once_flag once_;
};

}  // namespace

WorkPtr Communicator::allgatherShards(torch::Tensor& tensor, const std::string& /*tag*/) {
  const int n = size();
  const int64_t count = tensor.numel();
  const int64_t longest = ringChunk(count, n, 0).length;  // chunk 0 is never shorter
  const RingChunk mine = shardOf(count, n, rank());
  auto padded = torch::zeros({longest}, tensor.options());
  padded.narrow(0, 0, mine.length).copy_(tensor.narrow(0, mine.offset, mine.length));
  auto gathered = torch::empty({n * longest}, tensor.options());
  WorkPtr work = allgather(padded, gathered);
  torch::Tensor out = tensor;
  return std::make_shared<ContinuedWork>(
      std::move(work), [out, gathered, n, count, longest]() mutable {
        for (int r = 0; r < n; ++r) {
          const RingChunk shard = shardOf(count, n, r);
          out.narrow(0, shard.offset, shard.length)
              .copy_(gathered.narrow(0, r * longest, shard.length));
        }
      });
}

}  // namespace ringtrain
