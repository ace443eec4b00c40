// Optimizers and learning-rate schedules built from the config. The optimizers are
// LibTorch's own (SGD, Adam, AdamW); the schedule sets the learning rate of every parameter
// group before each step, so it is a pure function of the step and resumes exactly.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <memory>
#include <string>
#include <vector>

#include "trainer/config/config.h"

namespace ringtrain {

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerConfig& cfg,
                                                       std::vector<torch::Tensor> parameters);

// Learning rate for optimizer step `step` (0-based) of `totalSteps`:
//   linear warm-up over schedule.warmup_steps, then constant / step decay / cosine to min_lr.
double scheduledLearningRate(const ScheduleConfig& schedule, double baseLr, int64_t step,
                             int64_t totalSteps);

void setLearningRate(torch::optim::Optimizer& optimizer, double lr);

// The per-parameter state of the optimizers above, seen generically, so that the sharded
// optimizer (ZeRO-1) can cut it into shards and put it back together.
#if TORCH_VERSION_MAJOR >= 2
using OptimizerStateKey = void*;
#else
using OptimizerStateKey = std::string;
#endif
// The key of `parameter`'s entry in Optimizer::state() (LibTorch 1.13 and 2.x differ).
OptimizerStateKey optimizerStateKey(const torch::Tensor& parameter);
// The element-wise tensors of one parameter's state, in a fixed order (SGD: momentum buffer;
// Adam/AdamW: exp_avg, exp_avg_sq, max_exp_avg_sq); some may be undefined.
std::vector<torch::Tensor*> stateTensors(torch::optim::OptimizerParamState& state);
// Its step count, or null for an optimizer that keeps none (SGD).
int64_t* stateStep(torch::optim::OptimizerParamState& state);
// A fresh, empty state of optimizer.name's kind.
std::unique_ptr<torch::optim::OptimizerParamState> newParamState(const OptimizerConfig& cfg);
// Bytes of every tensor in `optimizer`'s state.
int64_t optimizerStateBytes(torch::optim::Optimizer& optimizer);

// Zeroes every .grad in place, keeping the tensor (for the Trainer, a slice of its gradient
// bucket). LibTorch 1.13's zero_grad() does this; 2.x's default sets .grad to none, after
// which the next backward allocates a fresh gradient that the bucket must copy back in: a
// copy per parameter per step.
void zeroGradsInPlace(torch::optim::Optimizer& optimizer);

}  // namespace ringtrain
