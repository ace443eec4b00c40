// Exports: the safetensors file is checked against the format's specification by an
// independent reader written here (header length, JSON header, data offsets, padding), the
// torch file by LibTorch's own pickle reader, and the atomic writer by failing writes.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "models/registry.h"
#include "tests/unit/test_dir.h"
#include "trainer/checkpoint/durable_file.h"
#include "trainer/checkpoint/export.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = freshTestDirectory("export");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string readAll(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  fs::path dir_;
};

std::vector<NamedTensor> sampleTensors() {
  return {
      {"layer.weight", torch::arange(6, torch::kFloat32).reshape({2, 3}) / 7.0},
      {"counts",
       torch::tensor({int64_t{1}, int64_t{-2}, int64_t{3}, int64_t{1} << 40}, torch::kInt64)},
      {"half", torch::tensor({1.5, -2.25}, torch::kFloat32).to(torch::kBFloat16)},
      {"scalar", torch::tensor(3.25, torch::kFloat64)},
      {"empty", torch::zeros({0, 5}, torch::kFloat32)},
      {"flags", torch::tensor({true, false, true}, torch::kBool)},
  };
}

TEST_F(ExportTest, SafetensorsFollowsTheSpecification) {
  const auto tensors = sampleTensors();
  const std::string config = "model:\n  name: \"fashion_cnn\"\ttab \\ back\x01";
  writeSafetensors((dir_ / "m.safetensors").string(), tensors,
                   {{"format", "pt"}, {"config", config}});
  const std::string file = readAll(dir_ / "m.safetensors");
  ASSERT_GE(file.size(), 8u);

  // 8 bytes: little-endian u64 header length.
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) {
    headerLength = (headerLength << 8) | static_cast<unsigned char>(file[static_cast<size_t>(i)]);
  }
  ASSERT_LE(8 + headerLength, file.size());
  EXPECT_EQ((8 + headerLength) % 8, 0u) << "data is not 8-byte aligned";
  const std::string header = file.substr(8, headerLength);
  ASSERT_EQ(header.front(), '{');
  const auto close = header.find_last_of('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos)
      << "only spaces may pad the header";

  // JSON is YAML: yaml-cpp reads the header independently of the writer.
  const YAML::Node json = YAML::Load(header);
  ASSERT_TRUE(json.IsMap());
  EXPECT_EQ(json.size(), tensors.size() + 1);
  EXPECT_EQ(json["__metadata__"]["format"].as<std::string>(), "pt");
  EXPECT_EQ(json["__metadata__"]["config"].as<std::string>(), config);

  const std::string data = file.substr(8 + headerLength);
  const std::map<std::string, std::string> dtypes = {{"layer.weight", "F32"}, {"counts", "I64"},
                                                     {"half", "BF16"},        {"scalar", "F64"},
                                                     {"empty", "F32"},        {"flags", "BOOL"}};
  uint64_t expectedBegin = 0;
  for (const auto& t : tensors) {
    const YAML::Node entry = json[t.name];
    ASSERT_TRUE(entry.IsMap()) << t.name;
    EXPECT_EQ(entry["dtype"].as<std::string>(), dtypes.at(t.name));
    EXPECT_EQ(entry["shape"].as<std::vector<int64_t>>(), t.tensor.sizes().vec()) << t.name;
    const auto offsets = entry["data_offsets"].as<std::vector<uint64_t>>();
    ASSERT_EQ(offsets.size(), 2u);
    EXPECT_EQ(offsets[0], expectedBegin) << "holes or overlap before " << t.name;
    const uint64_t bytes = static_cast<uint64_t>(t.tensor.numel()) * t.tensor.element_size();
    ASSERT_EQ(offsets[1] - offsets[0], bytes) << t.name;
    // x86 is little-endian, so the file holds the tensor's own bytes.
    // (An empty tensor has no storage: its data_ptr may be null, which memcmp must not get.)
    if (bytes > 0) {
      EXPECT_EQ(std::memcmp(data.data() + offsets[0], t.tensor.data_ptr(), bytes), 0) << t.name;
    }
    expectedBegin = offsets[1];
  }
  EXPECT_EQ(expectedBegin, data.size()) << "the byte buffer must be fully indexed";
}

TEST_F(ExportTest, SafetensorsRejectsTypesWithoutAName) {
  EXPECT_EQ(safetensorsDtype(torch::kFloat16), "F16");
  EXPECT_EQ(safetensorsDtype(torch::kUInt8), "U8");
  EXPECT_THROW(safetensorsDtype(torch::kComplexFloat), ModelError);
  EXPECT_THROW(writeSafetensors((dir_ / "x").string(), {{"__metadata__", torch::zeros({1})}}, {}),
               ModelError);
}

TEST_F(ExportTest, JsonQuoteEscapesControlCharacters) {
  EXPECT_EQ(jsonQuote("a\"b\\c\nd\x02"), "\"a\\\"b\\\\c\\nd\\u0002\"");
  EXPECT_EQ(jsonQuote("Ω"), "\"Ω\"");  // UTF-8 passes through
}

TEST_F(ExportTest, TorchStateDictLoadsBackWithNamesInOrder) {
  auto model = makeModel("fashion_cnn");
  const auto tensors = stateDictOf(*model);
  ASSERT_EQ(tensors.size(), 8u);
  EXPECT_EQ(tensors[0].name, "conv1.weight");
  EXPECT_EQ(tensors[7].name, "fc2.bias");
  writeTorchStateDict((dir_ / "m.pt").string(), tensors);

  const std::string bytes = readAll(dir_ / "m.pt");
  EXPECT_EQ(bytes.substr(0, 2), "PK") << "torch.save's format is a zip archive";
  const auto value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  ASSERT_TRUE(value.isGenericDict());
  const auto dict = value.toGenericDict();
  ASSERT_EQ(dict.size(), tensors.size());
  size_t i = 0;
  for (const auto& entry : dict) {
    EXPECT_EQ(entry.key().toStringRef(), tensors[i].name);
    EXPECT_TRUE(torch::equal(entry.value().toTensor(), tensors[i].tensor)) << tensors[i].name;
    ++i;
  }
}

TEST_F(ExportTest, AtomicFileKeepsOldContentUntilCommit) {
  const auto path = (dir_ / "out.bin").string();
  {
    AtomicFile first(path);
    first.write("old", 3);
    first.commit();
  }
  {
    AtomicFile second(path);
    second.write("new content", 11);
    EXPECT_EQ(readAll(path), "old");  // not committed yet
  }                                   // destroyed without commit: as if the writer crashed
  EXPECT_EQ(readAll(path), "old");
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename(), "out.bin") << "temporary left behind: " << e.path();
  }
}

TEST_F(ExportTest, WriteFailuresNameTheSystemsReason) {
  try {
    AtomicFile missing((dir_ / "no" / "such" / "dir.bin").string());
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
  // /dev/full fails every write with ENOSPC: a real disk-full error.
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  FileWriter full("/dev/full");
  const std::vector<char> block(1 << 16, 'x');
  try {
    full.write(block.data(), block.size());
    full.finish();
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("free space"), std::string::npos) << e.hint();
  }
}

}  // namespace
}  // namespace ringtrain
