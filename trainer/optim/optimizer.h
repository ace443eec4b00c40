// Optimizers and learning-rate schedules built from the config. The optimizers are
// LibTorch's own (SGD, AdamW); the schedule sets the learning rate of every parameter
// group before each step, so it is a pure function of the step and resumes exactly.
#pragma once

#include <torch/torch.h>

#include <memory>
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

// Zeroes every .grad in place, keeping the tensor (for the Trainer, a slice of its gradient
// bucket). LibTorch 1.13's zero_grad() does this; 2.x's default sets .grad to none, after
// which the next backward allocates a fresh gradient that the bucket must copy back in: a
// copy per parameter per step.
void zeroGradsInPlace(torch::optim::Optimizer& optimizer);

}  // namespace ringtrain
