// FashionMnist on small synthetic files (always) and on the real data set (when the Debian
// package is installed), plus the dataset registry.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset_registry.h"
#include "data/fashion_mnist.h"

namespace ringtrain {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

const char* const kRealDir = "/usr/share/datasets/fashion-mnist";

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "ringtrain_fmnist_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

Bytes idx(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out;
  auto put32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<unsigned char>(v >> shift));
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void writeFile(const std::string& path, const Bytes& bytes, bool gzip) {
  if (gzip) {
    struct Closer {
      void operator()(gzFile_s* f) const { gzclose(f); }
    };
    std::unique_ptr<gzFile_s, Closer> f(gzopen(path.c_str(), "wb"));
    ASSERT_TRUE(f != nullptr) << path;
    ASSERT_EQ(gzwrite(f.get(), bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }
}

// Image i has every pixel equal to (i * 40 + row) % 256; label i is labels[i].
void writeSplit(const ScratchDir& dir, const std::string& prefix, const Bytes& labels, bool gzip,
                int64_t imageCount = -1) {
  const auto n =
      static_cast<uint32_t>(imageCount >= 0 ? imageCount : static_cast<int64_t>(labels.size()));
  Bytes pixels;
  for (uint32_t i = 0; i < n; ++i) {
    for (int row = 0; row < 28; ++row) {
      for (int col = 0; col < 28; ++col)
        pixels.push_back(static_cast<unsigned char>((i * 40 + row) % 256));
    }
  }
  const std::string ext = gzip ? ".gz" : "";
  writeFile(dir.file(prefix + "-images-idx3-ubyte" + ext), idx(0x803, {n, 28, 28}, pixels), gzip);
  writeFile(dir.file(prefix + "-labels-idx1-ubyte" + ext),
            idx(0x801, {static_cast<uint32_t>(labels.size())}, labels), gzip);
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(FashionMnistSynthetic, LoadsAndNormalisesBatches) {
  ScratchDir dir;
  writeSplit(dir, "train", {3, 0, 9, 4, 7}, /*gzip=*/false);
  writeSplit(dir, "t10k", {1, 2}, /*gzip=*/true);
  const double mean = 0.25, stdev = 0.5;
  const FashionMnist train(dir.str(), Split::Train, mean, stdev);
  const FashionMnist test(dir.str(), Split::Test, mean, stdev);
  EXPECT_EQ(train.size(), 5);
  EXPECT_EQ(test.size(), 2);
  EXPECT_EQ(train.images().scalar_type(), torch::kUInt8) << "kept as bytes in memory";

  const Batch b = train.get({4, 0, 2});
  EXPECT_EQ(b.inputs.scalar_type(), torch::kFloat32);
  EXPECT_EQ(b.inputs.sizes().vec(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(b.targets.scalar_type(), torch::kInt64);
  EXPECT_EQ(b.targets.sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(b.targets[0].item<int64_t>(), 7);
  EXPECT_EQ(b.targets[1].item<int64_t>(), 3);
  EXPECT_EQ(b.targets[2].item<int64_t>(), 9);
  // Sample 4, row 5: pixel 4*40+5 = 165.
  EXPECT_NEAR(b.inputs[0][0][5][17].item<float>(), (165 / 255.0 - mean) / stdev, 1e-6);
  EXPECT_NEAR(b.inputs[1][0][0][0].item<float>(), (0 / 255.0 - mean) / stdev, 1e-6);
  EXPECT_EQ(test.get({1}).targets[0].item<int64_t>(), 2);
  EXPECT_EQ(train.get({}).inputs.size(0), 0);
}

TEST(FashionMnistSynthetic, PrefersGzipWhenBothExist) {
  ScratchDir dir;
  writeSplit(dir, "train", {1, 1, 1}, /*gzip=*/false);
  writeSplit(dir, "train", {2, 2}, /*gzip=*/true);
  const FashionMnist train(dir.str(), Split::Train);
  EXPECT_EQ(train.size(), 2);
  EXPECT_EQ(train.get({0}).targets[0].item<int64_t>(), 2);
}

TEST(FashionMnistSynthetic, ImageAndLabelCountsMustMatch) {
  ScratchDir dir;
  writeSplit(dir, "train", {1, 2, 3}, /*gzip=*/true, /*imageCount=*/4);
  try {
    FashionMnist(dir.str(), Split::Train);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_CONTAINS(e.what(), "train-images-idx3-ubyte.gz' holds 4 images");
    EXPECT_CONTAINS(e.what(), "train-labels-idx1-ubyte.gz' holds 3 labels");
  }
}

TEST(FashionMnistSynthetic, LabelsMustBeClasses) {
  ScratchDir dir;
  writeSplit(dir, "t10k", {1, 10}, /*gzip=*/false);
  try {
    FashionMnist(dir.str(), Split::Test);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_CONTAINS(e.what(), "contains label 10");
  }
}

TEST(FashionMnistSynthetic, MissingDirectoryAndFiles) {
  ScratchDir dir;
  const std::string missing = dir.file("nowhere");
  try {
    FashionMnist(missing, Split::Train);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_CONTAINS(e.what(), missing);
    EXPECT_CONTAINS(e.hint(), "dataset-fashion-mnist");
    EXPECT_CONTAINS(e.hint(), "data.dir");
  }
  writeSplit(dir, "train", {1}, /*gzip=*/true);
  fs::remove(dir.file("train-labels-idx1-ubyte.gz"));
  try {
    FashionMnist(dir.str(), Split::Train);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_CONTAINS(e.what(), "train-labels-idx1-ubyte[.gz] not found in '" + dir.str() + "'");
    EXPECT_CONTAINS(e.hint(), "dataset-fashion-mnist");
  }
}

TEST(FashionMnistSynthetic, BadIndexAndBadStd) {
  ScratchDir dir;
  writeSplit(dir, "train", {1, 2}, /*gzip=*/false);
  const FashionMnist train(dir.str(), Split::Train);
  EXPECT_THROW(train.get({0, 2}), DataError);
  EXPECT_THROW(train.get({-1}), DataError);
  EXPECT_THROW(FashionMnist(dir.str(), Split::Train, 0.3, 0.0), ConfigError);
}

TEST(DatasetRegistry, BuildsRegisteredDatasetsAndNamesTheKnownOnes) {
  const std::vector<std::string> builtIn = registeredDatasets();
  EXPECT_NE(std::find(builtIn.begin(), builtIn.end(), "fashion_mnist"), builtIn.end());

  ScratchDir dir;
  writeSplit(dir, "t10k", {5, 6, 7}, /*gzip=*/true);
  DataConfig cfg;
  cfg.dir = dir.str();
  EXPECT_EQ(makeDataset(cfg, Split::Test)->size(), 3);

  Split seen = Split::Train;
  registerDataset("unit_test_tiny", [&seen](const DataConfig& c, Split split) -> DatasetPtr {
    seen = split;
    return std::make_shared<const FashionMnist>(c.dir, split);
  });
  cfg.name = "unit_test_tiny";
  EXPECT_EQ(makeDataset(cfg, Split::Test)->size(), 3);
  EXPECT_EQ(seen, Split::Test);

  registerDataset("unit_test_null", [](const DataConfig&, Split) { return DatasetPtr(); });
  cfg.name = "unit_test_null";
  EXPECT_THROW(makeDataset(cfg, Split::Train), DataError);

  cfg.name = "imagenet";
  try {
    makeDataset(cfg, Split::Train);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "unknown dataset 'imagenet'");
    EXPECT_CONTAINS(e.what(), "fashion_mnist");
    EXPECT_CONTAINS(e.what(), "unit_test_tiny");
    EXPECT_CONTAINS(e.hint(), "registerDataset");
  }
}

TEST(FashionMnistReal, LoadsTheInstalledDataSet) {
  if (!fs::is_directory(kRealDir)) GTEST_SKIP() << kRealDir << " absent (dataset-fashion-mnist)";
  const FashionMnist train(kRealDir, Split::Train);
  const FashionMnist test(kRealDir, Split::Test);
  ASSERT_EQ(train.size(), 60000);
  ASSERT_EQ(test.size(), 10000);
  for (const FashionMnist* ds : {&train, &test}) {
    EXPECT_GE(ds->labels().min().item<int64_t>(), 0);
    EXPECT_LE(ds->labels().max().item<int64_t>(), 9);
    // The classes are balanced: 6000 / 1000 of each.
    const torch::Tensor counts = torch::bincount(ds->labels().to(torch::kInt64), {}, 10);
    EXPECT_TRUE(torch::all(counts == ds->size() / 10).item<bool>()) << counts;
  }
  // The default mean / std are the training set's pixel statistics.
  const torch::Tensor pixels = train.images().to(torch::kFloat32).div_(255.0);
  EXPECT_NEAR(pixels.mean().item<double>(), 0.2860, 5e-4);
  EXPECT_NEAR(pixels.std().item<double>(), 0.3530, 5e-4);

  std::vector<int64_t> all(60000);
  for (int64_t i = 0; i < 60000; ++i) all[static_cast<size_t>(i)] = i;
  const Batch b = train.get(all);
  EXPECT_EQ(b.inputs.sizes().vec(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_NEAR(b.inputs.mean().item<double>(), 0.0, 2e-3);
  EXPECT_NEAR(b.inputs.std().item<double>(), 1.0, 2e-3);
  EXPECT_NEAR(b.inputs.min().item<double>(), (0.0 - 0.2860) / 0.3530, 1e-5);
  EXPECT_NEAR(b.inputs.max().item<double>(), (1.0 - 0.2860) / 0.3530, 1e-5);
  EXPECT_TRUE(torch::equal(b.targets, train.labels().to(torch::kInt64)));
  // Bit for bit the normalisation's definition as torch ops on the whole batch (the table
  // lookup must not change a single input, or training would change).
  const torch::Tensor want =
      train.images().to(torch::kFloat32).div_(255.0).sub_(0.2860).div_(0.3530).unsqueeze(1);
  EXPECT_TRUE(torch::equal(b.inputs, want));
  const Batch shuffled = test.get({9999, 0, 4242});
  const torch::Tensor picked = torch::tensor({9999, 0, 4242}, torch::kInt64);
  EXPECT_TRUE(torch::equal(shuffled.inputs, test.images()
                                                .index_select(0, picked)
                                                .to(torch::kFloat32)
                                                .div_(255.0)
                                                .sub_(0.2860)
                                                .div_(0.3530)
                                                .unsqueeze(1)));
  EXPECT_TRUE(
      torch::equal(shuffled.targets, test.labels().index_select(0, picked).to(torch::kInt64)));
}

}  // namespace
}  // namespace ringtrain
