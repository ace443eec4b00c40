#include "trainer/allreduce/zero_optimizer.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace ringtrain {

ShardedOptimizer::ShardedOptimizer(const OptimizerConfig& cfg, Communicator& comm,
                                   std::vector<torch::Tensor> parameters,
                                   const GradientSynchronizer& gradients,
                                   std::chrono::milliseconds timeout)
    : cfg_(cfg),
      comm_(comm),
      parameters_(std::move(parameters)),
      layout_(gradients.layout()),
      timeout_(timeout) {
  std::vector<torch::Tensor> shardParams;
  for (size_t b = 0; b < layout_.size(); ++b) {
    const BucketLayout& bucket = layout_[b];
    Shard shard;
    shard.range = shardOf(bucket.numel, comm_.size(), comm_.rank());
    const auto options = torch::TensorOptions().dtype(bucket.dtype).device(bucket.device);
    shard.whole = gradients.gradientBucket(b);
    shard.gradInWhole = shard.whole.defined();
    if (shard.gradInWhole) {
      shard.grad = shard.whole.narrow(0, shard.range.offset, shard.range.length);
    } else {
      shard.whole = comm_.allocateBuffer(bucket.numel, options);
      shard.grad = torch::zeros({shard.range.length}, options);
    }
    shard.param = torch::zeros({shard.range.length}, options);
    shard.param.mutable_grad() = shard.grad;
    shardParams.push_back(shard.param);
    shards_.push_back(std::move(shard));
  }
  optimizer_ = makeOptimizer(cfg_, std::move(shardParams));
}

template <typename F>
void ShardedOptimizer::forEachOverlap(size_t b, F&& f) const {
  const BucketLayout& bucket = layout_[b];
  const RingChunk range = shards_[b].range;
  for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
    const size_t k = bucket.parameterIndices[i];
    const int64_t begin = bucket.offsets[i];
    const int64_t end = begin + parameters_[k].numel();
    const int64_t lo = std::max(begin, range.offset);
    const int64_t hi = std::min(end, range.offset + range.length);
    if (lo < hi) f(k, lo - begin, lo - range.offset, hi - lo);
  }
}

void ShardedOptimizer::loadGradients() {
  torch::NoGradGuard noGrad;
  for (size_t b = 0; b < shards_.size(); ++b) {
    if (shards_[b].gradInWhole) continue;  // the reduce-scatter left them there
    forEachOverlap(b, [&](size_t k, int64_t inParam, int64_t inShard, int64_t length) {
      const torch::Tensor& grad = parameters_[k].grad();
      auto dst = shards_[b].grad.narrow(0, inShard, length);
      if (grad.defined()) {
        dst.copy_(grad.reshape({-1}).narrow(0, inParam, length));
      } else {
        dst.zero_();
      }
    });
  }
}

double ShardedOptimizer::gradientNorm() {
  auto squares = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat64));
  for (const Shard& shard : shards_) {
    squares += shard.grad.to(torch::kFloat64).pow(2).sum().cpu();
  }
  if (!layout_.empty()) squares = squares.to(layout_.front().device);
  comm_.allreduce(squares, "global gradient norm")->wait(timeout_);
  return std::sqrt(squares.cpu().item<double>());
}

void ShardedOptimizer::clipGradients(double maxNorm, double norm) {
  const double coefficient = maxNorm / (norm + 1e-6);
  if (coefficient >= 1.0) return;
  for (Shard& shard : shards_) shard.grad.mul_(coefficient);
}

void ShardedOptimizer::step(double lr) {
  torch::NoGradGuard noGrad;
  // The replica's parameters are the truth between steps (a load or a broadcast may have
  // changed them): the shard starts from them.
  for (size_t b = 0; b < shards_.size(); ++b) {
    forEachOverlap(b, [&](size_t k, int64_t inParam, int64_t inShard, int64_t length) {
      shards_[b]
          .param.narrow(0, inShard, length)
          .copy_(parameters_[k].detach().reshape({-1}).narrow(0, inParam, length));
    });
  }
  setLearningRate(*optimizer_, lr);
  optimizer_->step();
  std::vector<WorkPtr> works;
  for (size_t b = 0; b < shards_.size(); ++b) {
    // (Where whole is the gradient bucket this overwrites gradients already used.)
    shards_[b]
        .whole.narrow(0, shards_[b].range.offset, shards_[b].range.length)
        .copy_(shards_[b].param);
    works.push_back(
        comm_.allgatherShards(shards_[b].whole, "parameters of bucket " + std::to_string(b + 1)));
  }
  for (size_t b = 0; b < shards_.size(); ++b) {
    works[b]->wait(timeout_);
    const BucketLayout& bucket = layout_[b];
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      torch::Tensor p = parameters_[bucket.parameterIndices[i]].detach();
      p.copy_(shards_[b].whole.narrow(0, bucket.offsets[i], p.numel()).view(p.sizes()));
    }
  }
}

void ShardedOptimizer::importState(torch::optim::Optimizer& full) {
  if (full.state().empty()) return;
  torch::NoGradGuard noGrad;
  for (size_t b = 0; b < shards_.size(); ++b) {
    auto shardState = newParamState(cfg_);
    std::vector<torch::Tensor*> fields = stateTensors(*shardState);
    bool any = false;
    forEachOverlap(b, [&](size_t k, int64_t inParam, int64_t inShard, int64_t length) {
      auto found = full.state().find(optimizerStateKey(parameters_[k]));
      if (found == full.state().end()) return;
      any = true;
      std::vector<torch::Tensor*> from = stateTensors(*found->second);
      for (size_t f = 0; f < fields.size(); ++f) {
        if (!from[f]->defined()) continue;
        if (!fields[f]->defined()) *fields[f] = torch::zeros_like(shards_[b].param);
        fields[f]
            ->narrow(0, inShard, length)
            .copy_(from[f]->reshape({-1}).narrow(0, inParam, length));
      }
      if (int64_t* step = stateStep(*found->second)) *stateStep(*shardState) = *step;
    });
    // An empty shard (a bucket smaller than the world) still gets a state, like its peers'.
    if (!any && !shards_[b].range.length) {
      for (const auto& entry : full.state()) {
        std::vector<torch::Tensor*> from = stateTensors(*entry.second);
        for (size_t f = 0; f < fields.size(); ++f) {
          if (from[f]->defined()) *fields[f] = torch::zeros_like(shards_[b].param);
        }
        if (int64_t* step = stateStep(*entry.second)) *stateStep(*shardState) = *step;
        any = true;
        break;
      }
    }
    if (any) optimizer_->state()[optimizerStateKey(shards_[b].param)] = std::move(shardState);
  }
  full.state().clear();
}

void ShardedOptimizer::exportState(torch::optim::Optimizer& full) {
  torch::NoGradGuard noGrad;
  full.state().clear();
  for (size_t b = 0; b < shards_.size(); ++b) {
    // Every rank has stepped alike, so a bucket's shard has a state on all ranks or on none.
    auto found = optimizer_->state().find(optimizerStateKey(shards_[b].param));
    if (found == optimizer_->state().end()) continue;
    const BucketLayout& bucket = layout_[b];
    std::vector<std::unique_ptr<torch::optim::OptimizerParamState>> states;
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      states.push_back(newParamState(cfg_));
      if (int64_t* step = stateStep(*found->second)) *stateStep(*states.back()) = *step;
    }
    std::vector<torch::Tensor*> fields = stateTensors(*found->second);
    for (size_t f = 0; f < fields.size(); ++f) {
      if (!fields[f]->defined()) continue;
      auto whole = torch::zeros({bucket.numel}, fields[f]->options());
      whole.narrow(0, shards_[b].range.offset, shards_[b].range.length).copy_(*fields[f]);
      comm_.allgatherShards(whole, "optimizer state of bucket " + std::to_string(b + 1))
          ->wait(timeout_);
      for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
        const torch::Tensor& p = parameters_[bucket.parameterIndices[i]];
        *stateTensors(*states[i])[f] =
            whole.narrow(0, bucket.offsets[i], p.numel()).view(p.sizes()).clone();
      }
    }
    for (size_t i = 0; i < bucket.parameterIndices.size(); ++i) {
      full.state()[optimizerStateKey(parameters_[bucket.parameterIndices[i]])] =
          std::move(states[i]);
    }
  }
}

}  // namespace ringtrain
