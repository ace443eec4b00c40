// CSV datasets: numeric features + an integer label column; every malformed input is a
// DataError naming the file, the line and the column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/csv.h"
#include "data/dataset_registry.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

// The DataError message parseCsv throws for `text`, or "" when it parses.
std::string errorOf(const std::string& text, const std::string& label = "label") {
  try {
    parseCsv(text, "t.csv", label);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(Csv, ParsesFeaturesAndLabels) {
  const auto table =
      parseCsv("x1, label ,\"x 2\"\r\n1.5,0,2\r\n\r\n-3e2 , 2 , \"4\"\n", "t.csv", "label");
  EXPECT_EQ(table.featureNames, (std::vector<std::string>{"x1", "x 2"}));
  ASSERT_EQ(table.features.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(table.features[0][0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(table.features[1][0].item<float>(), -300.0f);
  EXPECT_FLOAT_EQ(table.features[1][1].item<float>(), 4.0f);
  EXPECT_TRUE(torch::equal(table.labels, torch::tensor({0, 2}, torch::kLong)));

  CsvDataset data(table);
  EXPECT_EQ(data.size(), 2);
  EXPECT_EQ(data.featureCount(), 2);
  EXPECT_EQ(data.classCount(), 3);
  const Batch b = data.get({1, 0});
  EXPECT_EQ(b.inputs.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(b.targets, torch::tensor({2, 0}, torch::kLong)));
  EXPECT_THROW(data.get({2}), DataError);
}

TEST(Csv, RaggedRowsNameFileAndLine) {
  const auto e = errorOf("a,b,label\n1,2,0\n1,2\n");
  EXPECT_NE(e.find("t.csv, line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("2 cells"), std::string::npos) << e;
  EXPECT_NE(errorOf("a,label\n1,0,5\n").find("line 2"), std::string::npos);
}

TEST(Csv, NonNumericCellsNameFileLineAndColumn) {
  const auto e = errorOf("a,b,label\n1,2,0\n\n3,abc,1\n");
  EXPECT_NE(e.find("t.csv, line 4, column 2 ('b')"), std::string::npos) << e;
  EXPECT_NE(e.find("'abc' is not a number"), std::string::npos) << e;
  EXPECT_NE(errorOf("a,label\n,0\n").find("column 1 ('a')"), std::string::npos);  // empty
  EXPECT_NE(errorOf("a,label\nnan,0\n").find("column 1"), std::string::npos);
  EXPECT_NE(errorOf("a,label\n1,1.5\n").find("line 2, column 2 ('label')"), std::string::npos);
  EXPECT_NE(errorOf("a,label\n1,-1\n").find("non-negative integer"), std::string::npos);
}

TEST(Csv, HeaderProblems) {
  EXPECT_NE(errorOf("").find("no header"), std::string::npos);
  EXPECT_NE(errorOf("a,b\n1,2\n").find("no label column 'label'"), std::string::npos);
  EXPECT_NE(errorOf("label,a,label\n").find("appears twice"), std::string::npos);
  EXPECT_NE(errorOf("a,\"label\n").find("unterminated quote"), std::string::npos);
  EXPECT_EQ(errorOf("a,y\n1,0\n", "y"), "");  // another label column name
}

TEST(Csv, RegisteredDatasetReadsTrainAndTestFiles) {
  const auto dir = fs::path(::testing::TempDir()) / "ringtrain_csv_test";
  fs::create_directories(dir);
  std::ofstream(dir / "train.csv") << "f1,f2,cls\n0,1,1\n1,0,0\n2,2,1\n";
  std::ofstream(dir / "test.csv") << "f1,f2,cls\n0,0,0\n";
  DataConfig cfg;
  cfg.name = "csv";
  cfg.dir = dir.string();
  cfg.label_column = "cls";
  EXPECT_EQ(makeDataset(cfg, Split::Train)->size(), 3);
  EXPECT_EQ(makeDataset(cfg, Split::Test)->size(), 1);
  std::ofstream(dir / "test.csv") << "f1,f2,cls\n0,x,0\n";
  try {
    makeDataset(cfg, Split::Test);
    FAIL() << "bad cell accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "test.csv").string() + ", line 2, column 2"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
  EXPECT_THROW(makeDataset(cfg, Split::Train), DataError);
}

// test.csv is read by position with train.csv's columns: any other header is refused, naming
// the first column that differs; a test split without rows is refused too.
TEST(Csv, TestSplitMustHaveTrainColumns) {
  const auto dir = fs::path(::testing::TempDir()) / "ringtrain_csv_columns";
  fs::create_directories(dir);
  std::ofstream(dir / "train.csv") << "f1,f2,cls\n0,1,1\n1,0,0\n";
  DataConfig cfg;
  cfg.name = "csv";
  cfg.dir = dir.string();
  cfg.label_column = "cls";
  const auto testError = [&](const std::string& text) -> std::string {
    std::ofstream(dir / "test.csv", std::ios::trunc) << text;
    try {
      makeDataset(cfg, Split::Test);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(testError("f1,f2,cls\n0,0,0\n"), "");
  auto e = testError("f2,f1,cls\n0,0,0\n");  // the features swapped
  EXPECT_NE(e.find("column 1 is 'f2' in test.csv and 'f1' in train.csv"), std::string::npos) << e;
  e = testError("f1,f2,f3,cls\n0,0,0,0\n");  // an extra feature
  EXPECT_NE(e.find("column 3 is 'f3' in test.csv and 'cls' in train.csv"), std::string::npos) << e;
  e = testError("f1,cls\n0,0\n");  // a missing feature
  EXPECT_NE(e.find("has the columns (f1, cls)"), std::string::npos) << e;
  EXPECT_NE(e.find("has (f1, f2, cls)"), std::string::npos) << e;
  e = testError("f1,f2,cls\n");  // the header alone
  EXPECT_NE(e.find("the test split of dataset 'csv'"), std::string::npos) << e;
  EXPECT_NE(e.find("has no samples"), std::string::npos) << e;
  EXPECT_EQ(makeDataset(cfg, Split::Train)->size(), 2);  // train.csv alone is not compared
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ringtrain
