// Callbacks that run when a parameter's gradient has been accumulated into its .grad.
//
// Why not Tensor::register_hook: a tensor hook runs *before* autograd adds the new gradient
// into .grad, so a hook that needs the final .grad (with earlier micro-batches' gradients in
// it) must compute `.grad + new` into a fresh tensor: an allocation of the parameter's size
// per parameter per step (for fashion_mlp's 800 KB fc1.weight that was page faults worth a
// third of the step; see bench/RESULTS.md). The hook must run after the addition:
// - LibTorch 2.x: the tensor's post-accumulate-grad hook, the slot Python's
//   Tensor.register_post_accumulate_grad_hook fills (AccumulateGrad calls it once .grad
//   holds the sum). The slot holds one hook: one already there is chained, not replaced,
//   and put back when this object goes.
// - LibTorch 1.13 has no such slot: a post-hook on the parameter's AccumulateGrad node, as
//   PyTorch DDP's Reducer did before 2.x.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
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
    torch::Tensor parameter;
    // 1.13: the AccumulateGrad node, held so that every backward reuses it (autograd keeps
    // only a weak reference); 2.x: unused.
    std::shared_ptr<void> node;
    std::uintptr_t key;  // identifies the installed hook
  };
  std::vector<Hook> hooks_;
};

}  // namespace ringtrain
