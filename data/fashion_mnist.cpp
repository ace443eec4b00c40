#include "data/fashion_mnist.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "data/idx.h"

namespace ringtrain {

namespace {

const char* const kInstallHint =
    "install the Debian package dataset-fashion-mnist (it puts the files in "
    "/usr/share/datasets/fashion-mnist) or set data.dir to the directory holding them";

// The file for `stem` in `dir`: stem.gz when present, else the plain stem.
std::string locate(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError("Fashion-MNIST directory '" + dir + "' does not exist", kInstallHint);
  }
  const fs::path gz = fs::path(dir) / (stem + ".gz");
  const fs::path plain = fs::path(dir) / stem;
  if (fs::exists(gz, ec)) return gz.string();
  if (fs::exists(plain, ec)) return plain.string();
  throw DataError("Fashion-MNIST file " + stem + "[.gz] not found in '" + dir + "'", kInstallHint);
}

}  // namespace

FashionMnist::FashionMnist(const std::string& dir, Split split, double mean, double std)
    : split_(split), mean_(mean), std_(std) {
  if (!(std > 0.0)) {
    throw ConfigError("data.std must be > 0 to normalise inputs, got " + std::to_string(std),
                      "set data.std to the pixel standard deviation, 0.3530 for Fashion-MNIST");
  }
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string imagesPath = locate(dir, prefix + "-images-idx3-ubyte");
  const std::string labelsPath = locate(dir, prefix + "-labels-idx1-ubyte");
  images_ = readIdxUint8(imagesPath, 3);
  labels_ = readIdxUint8(labelsPath, 1);

  if (images_.size(1) != kImageSide || images_.size(2) != kImageSide) {
    throw DataError("'" + imagesPath + "' holds " + std::to_string(images_.size(1)) + "x" +
                        std::to_string(images_.size(2)) + " images, Fashion-MNIST's are 28x28",
                    "point data.dir at the Fashion-MNIST files");
  }
  if (images_.size(0) != labels_.size(0)) {
    throw DataError("'" + imagesPath + "' holds " + std::to_string(images_.size(0)) +
                        " images but '" + labelsPath + "' holds " +
                        std::to_string(labels_.size(0)) + " labels",
                    "the two files must come from the same split; fetch them again");
  }
  const int64_t maxLabel = labels_.max().item<int64_t>();
  if (maxLabel >= kNumClasses) {
    throw DataError("'" + labelsPath + "' contains label " + std::to_string(maxLabel) +
                        ", Fashion-MNIST labels are 0-9",
                    "point data.dir at the Fashion-MNIST files");
  }
}

Batch FashionMnist::get(const std::vector<int64_t>& indices) const {
  const auto count = static_cast<int64_t>(indices.size());
  torch::Tensor index = torch::empty({count}, torch::kInt64);
  int64_t* out = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t sample = indices[static_cast<size_t>(i)];
    if (sample < 0 || sample >= size()) {
      throw DataError("Fashion-MNIST " + std::string(splitName(split_)) + " index " +
                      std::to_string(sample) + " is out of range [0, " + std::to_string(size()) +
                      ")");
    }
    out[i] = sample;
  }
  Batch batch;
  batch.inputs = images_.index_select(0, index)
                     .to(torch::kFloat32)
                     .div_(255.0)
                     .sub_(mean_)
                     .div_(std_)
                     .unsqueeze(1);
  batch.targets = labels_.index_select(0, index).to(torch::kInt64);
  return batch;
}

}  // namespace ringtrain
