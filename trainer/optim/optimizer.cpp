#include "trainer/optim/optimizer.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ringtrain {

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerConfig& cfg,
                                                       std::vector<torch::Tensor> parameters) {
  if (cfg.name == "sgd") {
    torch::optim::SGDOptions options(cfg.lr);
    options.momentum(cfg.momentum).nesterov(cfg.nesterov).weight_decay(cfg.weight_decay);
    if (cfg.nesterov && cfg.momentum <= 0.0) {
      throw ConfigError("optimizer.nesterov needs optimizer.momentum > 0",
                        "set optimizer.momentum (e.g. 0.9) or optimizer.nesterov: false");
    }
    return std::make_unique<torch::optim::SGD>(std::move(parameters), options);
  }
  if (cfg.name == "adamw") {
    torch::optim::AdamWOptions options(cfg.lr);
    options.betas(std::make_tuple(cfg.beta1, cfg.beta2))
        .eps(cfg.eps)
        .weight_decay(cfg.weight_decay);
    return std::make_unique<torch::optim::AdamW>(std::move(parameters), options);
  }
  throw ConfigError("unknown optimizer '" + cfg.name + "' (optimizer.name)",
                    "use 'sgd' or 'adamw'");
}

double scheduledLearningRate(const ScheduleConfig& schedule, double baseLr, int64_t step,
                             int64_t totalSteps) {
  if (schedule.warmup_steps > 0 && step < schedule.warmup_steps) {
    return baseLr * static_cast<double>(step + 1) / static_cast<double>(schedule.warmup_steps);
  }
  const int64_t afterWarmup = step - schedule.warmup_steps;
  if (schedule.name == "step") {
    const int64_t decays = schedule.step_size > 0 ? afterWarmup / schedule.step_size : 0;
    return baseLr * std::pow(schedule.gamma, static_cast<double>(decays));
  }
  if (schedule.name == "cosine") {
    const int64_t span = std::max<int64_t>(1, totalSteps - schedule.warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(afterWarmup) / span);
    return schedule.min_lr + 0.5 * (baseLr - schedule.min_lr) * (1.0 + std::cos(M_PI * progress));
  }
  return baseLr;  // constant
}

void setLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    auto& options = group.options();
    if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      sgd->lr(lr);
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
      adamw->lr(lr);
    }
  }
}

void zeroGradsInPlace(torch::optim::Optimizer& optimizer) {
#if TORCH_VERSION_MAJOR >= 2
  optimizer.zero_grad(/*set_to_none=*/false);
#else
  optimizer.zero_grad();
#endif
}

}  // namespace ringtrain
