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
  if (cfg.name == "adam") {
    torch::optim::AdamOptions options(cfg.lr);
    options.betas(std::make_tuple(cfg.beta1, cfg.beta2))
        .eps(cfg.eps)
        .weight_decay(cfg.weight_decay);
    return std::make_unique<torch::optim::Adam>(std::move(parameters), options);
  }
  throw ConfigError("unknown optimizer '" + cfg.name + "' (optimizer.name)",
                    "use 'sgd', 'adam' or 'adamw'");
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
    } else if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      adam->lr(lr);
    }
  }
}

OptimizerStateKey optimizerStateKey(const torch::Tensor& parameter) {
#if TORCH_VERSION_MAJOR >= 2
  return parameter.unsafeGetTensorImpl();
#else
  return c10::guts::to_string(parameter.unsafeGetTensorImpl());
#endif
}

std::vector<torch::Tensor*> stateTensors(torch::optim::OptimizerParamState& state) {
  if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(&state)) {
    return {&sgd->momentum_buffer()};
  }
  if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(&state)) {
    return {&adamw->exp_avg(), &adamw->exp_avg_sq(), &adamw->max_exp_avg_sq()};
  }
  if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(&state)) {
    return {&adam->exp_avg(), &adam->exp_avg_sq(), &adam->max_exp_avg_sq()};
  }
  throw Error("optimizer state of an unknown kind", "this is a bug; please report it");
}

int64_t* stateStep(torch::optim::OptimizerParamState& state) {
  if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(&state)) return &adamw->step();
  if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(&state)) return &adam->step();
  return nullptr;
}

std::unique_ptr<torch::optim::OptimizerParamState> newParamState(const OptimizerConfig& cfg) {
  if (cfg.name == "adamw") return std::make_unique<torch::optim::AdamWParamState>();
  if (cfg.name == "adam") return std::make_unique<torch::optim::AdamParamState>();
  return std::make_unique<torch::optim::SGDParamState>();
}

int64_t optimizerStateBytes(torch::optim::Optimizer& optimizer) {
  int64_t bytes = 0;
  for (auto& entry : optimizer.state()) {
    for (const torch::Tensor* t : stateTensors(*entry.second)) {
      if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
    }
  }
  return bytes;
}

void zeroGradsInPlace(torch::optim::Optimizer& optimizer) {
#if TORCH_VERSION_MAJOR >= 2
  optimizer.zero_grad(/*set_to_none=*/false);
#else
  optimizer.zero_grad();
#endif
}

}  // namespace ringtrain
