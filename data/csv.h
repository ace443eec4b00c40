// Tabular data from CSV files: a header row naming the columns, then one sample per row of
// numeric feature cells and one target: an integer class label, or (data.target_type: float)
// a real value to regress on.
//
//   sepal_length,sepal_width,petal_length,petal_width,label
//   5.1,3.5,1.4,0.2,0
//
// Cells are separated by commas; a cell may be double-quoted ("" inside quotes is a quote);
// surrounding spaces are ignored; blank lines are skipped; CRLF line ends are accepted. Every
// problem is a DataError that names the file, the line and the column, e.g.
//   data/train.csv, line 7, column 3 ('petal_length'): 'abc' is not a number
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/dataset.h"
#include "data/split.h"

namespace ringtrain {

// What the label column holds.
enum class CsvTarget { Class, Float };

struct CsvTable {
  std::vector<std::string> header;        // every column, in the file's order
  std::vector<std::string> featureNames;  // header order, label column removed
  torch::Tensor features;                 // float32 [rows, features]
  torch::Tensor labels;                   // int64 [rows], each >= 0; float32 [rows] for Float
};

// Parses CSV text; `source` names it in errors. Throws DataError for a missing or duplicate
// label column, a row with more or fewer cells than the header, a non-numeric feature, a
// label that is not a non-negative integer, or an unterminated quote.
CsvTable parseCsv(const std::string& text, const std::string& source,
                  const std::string& labelColumn, CsvTarget target = CsvTarget::Class);
// Reads and parses a file. Throws DataError when it cannot be read.
CsvTable readCsv(const std::string& path, const std::string& labelColumn,
                 CsvTarget target = CsvTarget::Class);

class CsvDataset : public Dataset {
 public:
  CsvDataset(const std::string& path, const std::string& labelColumn,
             CsvTarget target = CsvTarget::Class);
  explicit CsvDataset(CsvTable table);

  int64_t size() const override { return table_.labels.size(0); }
  // inputs: float32 [B, features]; targets: int64 (float32 for Float) [B]. Throws DataError
  // for a bad index.
  Batch get(const std::vector<int64_t>& indices) const override;

  const CsvTable& table() const { return table_; }
  int64_t featureCount() const { return table_.features.size(1); }
  // 1 + the largest label (0 for float targets).
  int64_t classCount() const;

 private:
  CsvTable table_;
};

// The `csv` dataset of the registry: <data.dir>/train.csv and <data.dir>/test.csv, label
// column data.label_column. Throws DataError when test.csv's header is not train.csv's (the
// same columns in the same order).
DatasetPtr makeCsvDataset(const DataConfig& cfg, Split split);

}  // namespace ringtrain
