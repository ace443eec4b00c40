#include "trainer/allreduce/grad_hooks.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <memory>
#include <string>
#include <utility>

#include "core/error.h"

namespace ringtrain {
namespace {

namespace autograd = torch::autograd;

#if TORCH_VERSION_MAJOR >= 2

class AfterAccumulation : public autograd::PostAccumulateGradHook {
 public:
  AfterAccumulation(std::function<void(size_t)> callback, size_t index,
                    std::unique_ptr<autograd::PostAccumulateGradHook> previous)
      : callback_(std::move(callback)), index_(index), previous_(std::move(previous)) {}

  void operator()(const autograd::Variable& parameter) override {
    if (previous_) (*previous_)(parameter);
    callback_(index_);
  }

  // The hook this one chains to: another AfterAccumulation of a second set of hooks over the
  // same parameter, or the user's own.
  std::unique_ptr<autograd::PostAccumulateGradHook>& previous() { return previous_; }

 private:
  std::function<void(size_t)> callback_;
  size_t index_;
  std::unique_ptr<autograd::PostAccumulateGradHook> previous_;
};

#else

class AfterAccumulation : public autograd::FunctionPostHook {
 public:
  AfterAccumulation(std::function<void(size_t)> callback, size_t index)
      : callback_(std::move(callback)), index_(index) {}

  autograd::variable_list operator()(const autograd::variable_list& outputs,
                                     const autograd::variable_list& /*inputs*/) override {
    callback_(index_);
    return outputs;
  }

 private:
  std::function<void(size_t)> callback_;
  size_t index_;
};

#endif

}  // namespace

AccumulatedGradHooks::AccumulatedGradHooks(const std::vector<torch::Tensor>& parameters,
                                           const std::vector<size_t>& indices,
                                           std::function<void(size_t)> onAccumulated) {
  for (const size_t i : indices) {
    const auto& p = parameters.at(i);
    if (!p.requires_grad() || !p.is_leaf()) {
      throw TrainingError("parameter #" + std::to_string(i) +
                              " is not a leaf tensor that requires grad; its gradient cannot "
                              "be hooked",
                          "register parameters with register_parameter, not computed tensors");
    }
#if TORCH_VERSION_MAJOR >= 2
    auto& slot = autograd::impl::post_acc_grad_hooks(p);
    auto hook = std::make_unique<AfterAccumulation>(onAccumulated, i, std::move(slot));
    const auto key = reinterpret_cast<std::uintptr_t>(hook.get());
    autograd::impl::set_post_acc_grad_hooks(p, std::move(hook));
    hooks_.push_back({p, nullptr, key});
#else
    std::shared_ptr<autograd::Node> node = autograd::impl::grad_accumulator(p);
    const std::uintptr_t key =
        node->add_post_hook(std::make_unique<AfterAccumulation>(onAccumulated, i));
    hooks_.push_back({p, node, key});
#endif
  }
}

AccumulatedGradHooks::~AccumulatedGradHooks() {
  for (auto it = hooks_.rbegin(); it != hooks_.rend(); ++it) {
#if TORCH_VERSION_MAJOR >= 2
    // Unlink ours from the chain, wherever it sits (sets of hooks over the same parameters
    // may go in any order), and put what it chained to in its place. A foreign hook that
    // replaced the chain without keeping it already destroyed ours.
    auto* link = &autograd::impl::post_acc_grad_hooks(it->parameter);
    while (*link) {
      auto* ours = dynamic_cast<AfterAccumulation*>(link->get());
      if (ours == nullptr) break;
      if (reinterpret_cast<std::uintptr_t>(ours) == it->key) {
        *link = std::move(ours->previous());
        break;
      }
      link = &ours->previous();
    }
#else
    std::static_pointer_cast<autograd::Node>(it->node)->del_post_hook(it->key);
#endif
  }
}

}  // namespace ringtrain
