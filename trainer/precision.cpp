#include "trainer/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace ringtrain {
namespace {

// LibTorch 2.x takes the device type; 1.13 has one function per device.
bool autocastEnabled(torch::DeviceType device) {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::is_autocast_enabled(device);
#else
  return device == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

torch::ScalarType autocastDtype(torch::DeviceType device) {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::get_autocast_dtype(device);
#else
  return device == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                                : at::autocast::get_autocast_cpu_dtype();
#endif
}

void setAutocast(torch::DeviceType device, bool enabled, torch::ScalarType dtype) {
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == torch::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

AutocastScope::AutocastScope(const std::string& precision, torch::Device device)
    : active_(precision == "bf16"), device_(device.type()) {
  if (!active_) return;
  wasEnabled_ = autocastEnabled(device_);
  previousDtype_ = autocastDtype(device_);
  setAutocast(device_, true, torch::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The outermost scope drops the casts it cached (bf16 copies of the weights): the next
  // step's weights differ.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  setAutocast(device_, wasEnabled_, previousDtype_);
}

}  // namespace ringtrain
