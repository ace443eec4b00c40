#include "trainer/grad_hooks.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <string>
#include <utility>

#include "trainer/error.h"

namespace ringtrain {
namespace {

class AfterAccumulation : public torch::autograd::FunctionPostHook {
 public:
  AfterAccumulation(std::function<void(size_t)> callback, size_t index)
      : callback_(std::move(callback)), index_(index) {}

  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    callback_(index_);
    return outputs;
  }

 private:
  std::function<void(size_t)> callback_;
  size_t index_;
};

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
    auto accumulator = torch::autograd::impl::grad_accumulator(p);
    const std::uintptr_t key =
        accumulator->add_post_hook(std::make_unique<AfterAccumulation>(onAccumulated, i));
    hooks_.push_back({std::move(accumulator), key});
  }
}

AccumulatedGradHooks::~AccumulatedGradHooks() {
  for (auto& hook : hooks_) hook.accumulator->del_post_hook(hook.key);
}

}  // namespace ringtrain
