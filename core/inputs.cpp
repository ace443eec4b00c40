#include "core/inputs.h"

#include <utility>

#include "core/error.h"
#include "core/names.h"

namespace ringtrain {

Inputs::Inputs(torch::Tensor tensor) : tensor_(std::move(tensor)) {}

Inputs::Inputs(NamedTensors named) : named_(std::move(named)) {}

const torch::Tensor& Inputs::tensor() const {
  if (isNamed()) {
    throw ModelError("the model asked for one input tensor, but the batch holds named inputs (" +
                         joinNames(names()) + ")",
                     "read them in forward() with inputs.at(\"" + names().front() + "\")");
  }
  return tensor_;
}

const torch::Tensor& Inputs::at(const std::string& name) const {
  const auto found = named_.find(name);
  if (found != named_.end()) return found->second;
  if (!isNamed()) {
    throw ModelError("the model asked for the input '" + name +
                         "', but the batch holds one unnamed input tensor",
                     "read it in forward() with inputs.tensor(), or give the dataset's batches "
                     "named inputs (Batch::named)");
  }
  throw ModelError("the model asked for the input '" + name + "', but the batch holds only " +
                       joinNames(names()) + didYouMean(name, names()),
                   "name the input as the dataset's batches do (Batch::named)");
}

std::vector<std::string> Inputs::names() const {
  std::vector<std::string> result;
  result.reserve(named_.size());
  for (const auto& [name, tensor] : named_) result.push_back(name);
  return result;
}

Inputs Inputs::to(const torch::Device& device) const {
  if (!isNamed()) return Inputs(tensor_.defined() ? tensor_.to(device) : tensor_);
  NamedTensors moved;
  for (const auto& [name, tensor] : named_) moved.emplace(name, tensor.to(device));
  return Inputs(std::move(moved));
}

}  // namespace ringtrain
