// The data section of an experiment config: which dataset, where its files are, and how it is
// batched. It lives with the datasets that read it; trainer/config/ parses it from YAML.
#pragma once

#include <cstdint>
#include <string>

namespace ringtrain {

struct DataConfig {
  std::string name = "fashion_mnist";                     // dataset registry name
  std::string dir = "/usr/share/datasets/fashion-mnist";  // where the data files live
  int64_t batch_size = 64;                                // per rank
  int64_t eval_batch_size = 1000;                         // per rank, evaluation only
  int64_t prefetch = 4;                                   // batches prepared ahead
  double mean = 0.2860;                                   // input normalisation
  double std = 0.3530;
  bool shuffle = true;
  // Language-model token data (data.name: tokens): tokens per training window (the model's
  // context; at most model.options.block_size), and the file format of the shards.
  int64_t block_size = 0;                  // 0: unset (required by `tokens`)
  std::string token_format = "ringtrain";  // ringtrain (headered shards) | nanogpt (.bin)
  // Tabular data (data.name: csv): the target column (every other column is a feature), and
  // what it holds: integer class indices, or float values (regression, train.loss: mse).
  std::string label_column = "label";
  std::string target_type = "class";  // class | float
};

}  // namespace ringtrain
