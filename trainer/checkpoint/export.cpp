#include "trainer/checkpoint/export.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "trainer/checkpoint/durable_file.h"

namespace ringtrain {

namespace {

bool hostIsLittleEndian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

void writeLittleEndianU64(AtomicFile& out, uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  out.write(bytes, sizeof bytes);
}

// The tensor's bytes in little-endian order (a copy is swapped on a big-endian host).
void writeTensorBytes(AtomicFile& out, const torch::Tensor& tensor) {
  const size_t elementSize = static_cast<size_t>(tensor.element_size());
  const size_t bytes = static_cast<size_t>(tensor.numel()) * elementSize;
  const auto* data = static_cast<const unsigned char*>(tensor.data_ptr());
  if (bytes == 0) return;
  if (hostIsLittleEndian() || elementSize == 1) {
    out.write(data, bytes);
    return;
  }
  std::vector<unsigned char> swapped(data, data + bytes);
  for (size_t i = 0; i < bytes; i += elementSize) {
    std::reverse(swapped.begin() + static_cast<std::ptrdiff_t>(i),
                 swapped.begin() + static_cast<std::ptrdiff_t>(i + elementSize));
  }
  out.write(swapped.data(), bytes);
}

}  // namespace

std::vector<NamedTensor> stateDictOf(const torch::nn::Module& module) {
  std::vector<NamedTensor> tensors;
  for (const auto& p : module.named_parameters()) {
    tensors.push_back({p.key(), p.value().detach().to(torch::kCPU).contiguous()});
  }
  for (const auto& b : module.named_buffers()) {
    tensors.push_back({b.key(), b.value().detach().to(torch::kCPU).contiguous()});
  }
  return tensors;
}

std::string safetensorsDtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return "F64";
    case torch::kFloat32:
      return "F32";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      throw ModelError(std::string("safetensors has no dtype for ") + c10::toString(type),
                       "convert the tensor to a float or integer type before exporting");
  }
}

std::string jsonQuote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::ostringstream header;
  header << '{';
  bool first = true;
  if (!metadata.empty()) {
    header << "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      header << (i ? "," : "") << jsonQuote(metadata[i].first) << ':'
             << jsonQuote(metadata[i].second);
    }
    header << '}';
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__") {
      throw ModelError("a tensor cannot be named __metadata__ in a safetensors file");
    }
    const uint64_t bytes = static_cast<uint64_t>(t.tensor.numel()) * t.tensor.element_size();
    header << (first ? "" : ",") << jsonQuote(t.name) << ":{\"dtype\":\""
           << safetensorsDtype(t.tensor.scalar_type()) << "\",\"shape\":[";
    for (int64_t d = 0; d < t.tensor.dim(); ++d) header << (d ? "," : "") << t.tensor.size(d);
    header << "],\"data_offsets\":[" << offset << ',' << offset + bytes << "]}";
    offset += bytes;
    first = false;
  }
  header << '}';
  std::string json = header.str();
  // The format allows trailing spaces in the header; padding to 8 bytes aligns the data.
  json.append((8 - (8 + json.size()) % 8) % 8, ' ');

  AtomicFile out(path);
  writeLittleEndianU64(out, json.size());
  out.write(json.data(), json.size());
  for (const auto& t : tensors) writeTensorBytes(out, t.tensor.contiguous());
  out.commit();
}

void writeTorchStateDict(const std::string& path, const std::vector<NamedTensor>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  // A clone owns exactly its elements: pickling a view would save its whole base storage.
  for (const auto& t : tensors) dict.insert(t.name, t.tensor.contiguous().clone());
  // What torch::pickle_save writes (torch.save's zip: data.pkl and data/<n> per storage),
  // less the type tag that LibTorch puts on a typed dict: the tag is the global
  // torch.jit._pickle.restore_type_tag, which torch.load refuses under weights_only=True,
  // its default since PyTorch 2.6. A plain dict of tensors loads under it.
  std::vector<char> pickled;
  torch::jit::Pickler pickler(
      [&](const char* data, size_t size) { pickled.insert(pickled.end(), data, data + size); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(dict);
  pickler.stop();
  std::vector<char> zip;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    zip.insert(zip.end(), bytes, bytes + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(),
                                     writer);
  writer.writeEndOfFile();
  AtomicFile out(path);
  out.write(zip.data(), zip.size());
  out.commit();
}

}  // namespace ringtrain
