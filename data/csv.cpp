#include "data/csv.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ringtrain {

namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return {};
  const auto end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

std::string where(const std::string& source, int64_t line) {
  return source + ", line " + std::to_string(line);
}

// Splits one line into cells. Quotes protect commas; "" inside quotes is one quote.
std::vector<std::string> splitCells(const std::string& line, const std::string& source,
                                    int64_t lineNumber) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"' && trim(cell).empty()) {
      cell.clear();
      quoted = true;
    } else if (c == ',') {
      cells.push_back(trim(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  if (quoted) {
    throw DataError(where(source, lineNumber) + ", column " + std::to_string(cells.size() + 1) +
                        ": unterminated quote",
                    "close the quoted cell on the same line");
  }
  cells.push_back(trim(cell));
  return cells;
}

// The first non-blank line's cells; lineNumber ends on that line.
std::vector<std::string> readHeader(std::istream& in, const std::string& source,
                                    int64_t& lineNumber) {
  std::string line;
  std::vector<std::string> header;
  while (header.empty() && std::getline(in, line)) {
    ++lineNumber;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!trim(line).empty()) header = splitCells(line, source, lineNumber);
  }
  if (header.empty()) {
    throw DataError(source + " is empty: no header row",
                    "the first line must name the columns, e.g. x1,x2,label");
  }
  return header;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
  return text;
}

std::ifstream openCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw DataError("cannot open " + path, "check data.dir: it must hold train.csv and test.csv");
  }
  return in;
}

// The evaluation split is only meaningful with the training split's columns in the training
// split's order: a model reads features by position, so a reordered, extra or missing column
// would evaluate silently wrong (or fail inside the first forward pass).
void checkSameColumns(const CsvTable& test, const std::string& testPath,
                      const std::string& trainPath) {
  auto in = openCsv(trainPath);
  int64_t lineNumber = 0;
  const auto trainHeader = readHeader(in, trainPath, lineNumber);
  if (trainHeader == test.header) return;
  std::string first;
  for (size_t c = 0; c < std::max(trainHeader.size(), test.header.size()); ++c) {
    const auto name = [c](const std::vector<std::string>& h) {
      return c < h.size() ? "'" + h[c] + "'" : std::string("missing");
    };
    if (name(trainHeader) != name(test.header)) {
      first = "column " + std::to_string(c + 1) + " is " + name(test.header) + " in test.csv and " +
              name(trainHeader) + " in train.csv";
      break;
    }
  }
  throw DataError(testPath + " has the columns (" + joined(test.header) + "), " + trainPath +
                      " has (" + joined(trainHeader) + "): " + first,
                  "write test.csv with train.csv's header: the same columns in the same order");
}

}  // namespace

CsvTable parseCsv(const std::string& text, const std::string& source,
                  const std::string& labelColumn, CsvTarget target) {
  std::istringstream in(text);
  std::string line;
  int64_t lineNumber = 0;
  const std::vector<std::string> header = readHeader(in, source, lineNumber);
  int64_t labelIndex = -1;
  CsvTable table;
  table.header = header;
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == labelColumn) {
      if (labelIndex >= 0) {
        throw DataError(where(source, lineNumber) + ": the label column '" + labelColumn +
                            "' appears twice (columns " + std::to_string(labelIndex + 1) + " and " +
                            std::to_string(c + 1) + ")",
                        "rename one of the columns");
      }
      labelIndex = static_cast<int64_t>(c);
    } else {
      table.featureNames.push_back(header[c]);
    }
  }
  if (labelIndex < 0) {
    throw DataError(where(source, lineNumber) + ": no label column '" + labelColumn +
                        "' in the header (" + joined(header) + ")",
                    "set data.label_column to the column that holds the class");
  }

  const auto columns = static_cast<int64_t>(header.size());
  std::vector<float> features;
  std::vector<int64_t> labels;
  std::vector<float> values;  // CsvTarget::Float
  while (std::getline(in, line)) {
    ++lineNumber;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const auto cells = splitCells(line, source, lineNumber);
    if (static_cast<int64_t>(cells.size()) != columns) {
      throw DataError(where(source, lineNumber) + ": the row has " + std::to_string(cells.size()) +
                          " cells, the header has " + std::to_string(columns) + " columns",
                      "every row needs one cell per header column");
    }
    for (int64_t c = 0; c < columns; ++c) {
      const std::string& cell = cells[static_cast<size_t>(c)];
      const std::string at = where(source, lineNumber) + ", column " + std::to_string(c + 1) +
                             " ('" + header[static_cast<size_t>(c)] + "')";
      char* end = nullptr;
      errno = 0;
      if (c == labelIndex && target == CsvTarget::Float) {
        const double value = cell.empty() ? 0.0 : std::strtod(cell.c_str(), &end);
        if (cell.empty() || *end != '\0' || !std::isfinite(value)) {
          throw DataError(at + ": target '" + cell + "' is not a finite number",
                          "data.target_type: float needs a number in every row's target cell");
        }
        values.push_back(static_cast<float>(value));
      } else if (c == labelIndex) {
        const long long value = cell.empty() ? 0 : std::strtoll(cell.c_str(), &end, 10);
        if (cell.empty() || *end != '\0' || errno == ERANGE || value < 0) {
          throw DataError(at + ": label '" + cell + "' is not a non-negative integer",
                          "labels are class indices 0, 1, 2, ...");
        }
        labels.push_back(value);
      } else {
        const double value = cell.empty() ? 0.0 : std::strtod(cell.c_str(), &end);
        if (cell.empty() || *end != '\0' || !std::isfinite(value)) {
          throw DataError(at + ": '" + cell + "' is not a number",
                          "feature cells must be numeric; encode categories as numbers");
        }
        features.push_back(static_cast<float>(value));
      }
    }
  }
  const auto rows =
      static_cast<int64_t>(target == CsvTarget::Float ? values.size() : labels.size());
  const auto featureCount = static_cast<int64_t>(table.featureNames.size());
  table.features = torch::from_blob(features.data(), {rows, featureCount}, torch::kFloat32).clone();
  table.labels = target == CsvTarget::Float
                     ? torch::from_blob(values.data(), {rows}, torch::kFloat32).clone()
                     : torch::from_blob(labels.data(), {rows}, torch::kLong).clone();
  return table;
}

CsvTable readCsv(const std::string& path, const std::string& labelColumn, CsvTarget target) {
  auto in = openCsv(path);
  std::stringstream text;
  text << in.rdbuf();
  return parseCsv(text.str(), path, labelColumn, target);
}

CsvDataset::CsvDataset(const std::string& path, const std::string& labelColumn, CsvTarget target)
    : table_(readCsv(path, labelColumn, target)) {}

CsvDataset::CsvDataset(CsvTable table) : table_(std::move(table)) {}

int64_t CsvDataset::classCount() const {
  if (size() == 0 || table_.labels.is_floating_point()) return 0;
  return table_.labels.max().item<int64_t>() + 1;
}

Batch CsvDataset::get(const std::vector<int64_t>& indices) const {
  for (const int64_t i : indices) {
    if (i < 0 || i >= size()) {
      throw DataError("CSV sample " + std::to_string(i) + " is outside [0, " +
                      std::to_string(size()) + ")");
    }
  }
  auto index = torch::tensor(indices, torch::kLong);
  return {table_.features.index_select(0, index), table_.labels.index_select(0, index)};
}

DatasetPtr makeCsvDataset(const DataConfig& cfg, Split split) {
  const auto path = std::filesystem::path(cfg.dir) / (std::string(splitName(split)) + ".csv");
  auto table = readCsv(path.string(), cfg.label_column,
                       cfg.target_type == "float" ? CsvTarget::Float : CsvTarget::Class);
  if (split == Split::Test) {
    checkSameColumns(table, path.string(), (std::filesystem::path(cfg.dir) / "train.csv").string());
  }
  return std::make_shared<const CsvDataset>(std::move(table));
}

}  // namespace ringtrain
