// Fashion-MNIST (Xiao et al. 2017): 28x28 grey-scale images of clothing in 10 classes,
// 60000 for training and 10000 for testing, stored as four IDX files:
//   {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
// The Debian package dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/split.h"

namespace ringtrain {

class FashionMnist : public Dataset {
 public:
  static constexpr int64_t kNumClasses = 10;
  static constexpr int64_t kImageSide = 28;

  // Loads `split` from `dir`, preferring the .gz file of each pair when both exist. Inputs
  // are normalised per batch as (x / 255 - mean) / std. Throws DataError when a file is
  // missing or malformed, or the image and label files disagree; ConfigError when std <= 0.
  FashionMnist(const std::string& dir, Split split, double mean = 0.2860, double std = 0.3530);

  int64_t size() const override { return labels_.size(0); }
  // inputs: float32 [B, 1, 28, 28]; targets: int64 [B]. Throws DataError for an index
  // outside [0, size()).
  Batch get(const std::vector<int64_t>& indices) const override;

  Split split() const { return split_; }
  // The raw data as loaded: uint8 [N, 28, 28] and uint8 [N].
  const torch::Tensor& images() const { return images_; }
  const torch::Tensor& labels() const { return labels_; }

 private:
  Split split_;
  double mean_;
  double std_;
  // Kept as uint8 (47 MB for the training set rather than 188 MB as float32); each batch is
  // converted and normalised when it is gathered.
  torch::Tensor images_;
  torch::Tensor labels_;
};

}  // namespace ringtrain
