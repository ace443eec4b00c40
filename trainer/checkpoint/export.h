// Exporting trained weights for other frameworks: safetensors (the Hugging Face format:
// https://huggingface.co/docs/safetensors, "Format") and a PyTorch state_dict that Python's
// torch.load reads. Both are written atomically (temporary file, fsync, rename).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace ringtrain {

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

// Parameters, then buffers, under their state_dict names ("fc1.weight"), detached,
// contiguous and on the CPU: what torch.nn.Module.load_state_dict expects.
std::vector<NamedTensor> stateDictOf(const torch::nn::Module& module);

// The safetensors dtype name of `type` ("F32", "BF16", "I64", ...). Throws ModelError for a
// type the format has no name for (complex, quantised).
std::string safetensorsDtype(torch::ScalarType type);

// JSON string literal of `text` (quoted, escaped), as the safetensors header needs.
std::string jsonQuote(const std::string& text);

// Writes `tensors` as a safetensors file: an 8-byte little-endian header length N, a JSON
// header of N bytes (padded with spaces so the data starts 8-byte aligned) mapping each name
// to {"dtype", "shape", "data_offsets"} plus "__metadata__" (string -> string), then the
// tensors' bytes, little-endian, back to back in the given order. Throws CheckpointError
// when the file cannot be written.
void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata);

// Writes a dict {name: tensor} in PyTorch's zip-based pickle format (LibTorch's own pickle
// writer, as torch.save produces), which torch.load reads into a state_dict, also with
// weights_only=True (no global beyond torch's tensor rebuilders).
void writeTorchStateDict(const std::string& path, const std::vector<NamedTensor>& tensors);

}  // namespace ringtrain
