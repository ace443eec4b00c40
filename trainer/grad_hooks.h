// Callbacks that run when a parameter's gradient has been accumulated into its .grad.
//
// Why not Tensor::register_hook: a tensor hook runs *before* autograd adds the new gradient
// into .grad, so a hook that needs the final .grad (with earlier micro-batches' gradients in
// it) must compute `.grad + new` into a fresh tensor: an allocation of the parameter's size
// per parameter per step (for fashion_mlp's 800 KB fc1.weight that was page faults worth a
// third of the step; see bench/RESULTS.md). PyTorch DDP's Reducer instead hooks the
// parameter's AccumulateGrad node, whose post-hooks run after the addition; this class does
// the same, through the autograd API that LibTorch 1.13 and 2.x both install.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace ringtrain {

class AccumulatedGradHooks {
 public:
  // Calls `onAccumulated(i)` whenever backward has finished accumulating parameters[i].grad,
  // for every i in `indices`. Parameters must be leaves that require grad. The callback runs
  // on the thread that executes backward.
  AccumulatedGradHooks(const std::vector<torch::Tensor>& parameters,
                       const std::vector<size_t>& indices,
                       std::function<void(size_t)> onAccumulated);
  // Removes the hooks: the parameters (and their autograd nodes) outlive this object.
  ~AccumulatedGradHooks();
  AccumulatedGradHooks(const AccumulatedGradHooks&) = delete;
  AccumulatedGradHooks& operator=(const AccumulatedGradHooks&) = delete;

  bool empty() const { return hooks_.empty(); }

 private:
  struct Hook {
    // Held so that every backward reuses this node (autograd keeps only a weak reference).
    std::shared_ptr<torch::autograd::Node> accumulator;
    std::uintptr_t key;
  };
  std::vector<Hook> hooks_;
};

}  // namespace ringtrain
