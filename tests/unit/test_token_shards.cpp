// Token shards: the header is validated (magic, version, width, size), windows stay inside
// their shard, ranks get disjoint token ranges, epochs reshuffle, the loader resumes from a
// cursor, nanoGPT files read, and prepare-text writes what it read.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset_registry.h"
#include "data/loader.h"
#include "data/sharding.h"
#include "data/text_prep.h"
#include "data/token_shards.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

class TokenShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringtrain_tokens_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Writes tokens 0, 1, 2, ... n-1 (mod 65536 for uint16) as a finished shard.
  std::string writeShard(const std::string& name, int64_t n, int width = 2, int64_t start = 0) {
    TokenShardWriter writer(path(name), width);
    std::vector<uint32_t> tokens;
    for (int64_t i = 0; i < n; ++i) tokens.push_back(static_cast<uint32_t>((start + i) % 65536));
    writer.append(tokens.data(), tokens.size());
    writer.finish();
    return path(name);
  }

  // Overwrites bytes of a file at `offset`.
  void patch(const std::string& file, size_t offset, const std::string& bytes) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  static std::string messageOf(const std::function<void()>& f) {
    try {
      f();
    } catch (const DataError& e) {
      return e.what();
    }
    return "(no DataError)";
  }

  std::string dir_;
};

TEST_F(TokenShardTest, RoundTripsUint16AndUint32) {
  const auto small = writeShard("a.bin", 1000);
  TokenShard a(small, TokenFileFormat::Ringtrain);
  EXPECT_EQ(a.size(), 1000);
  EXPECT_EQ(a.bytesPerToken(), 2);
  EXPECT_EQ(fs::file_size(small), kTokenShardHeaderBytes + 2000);
  EXPECT_EQ(a.at(999), 999);

  TokenShardWriter writer(path("b.bin"), 4);
  const std::vector<uint32_t> wide = {0, 65535, 65536, 4000000000u};
  writer.append(wide.data(), wide.size());
  writer.finish();
  TokenShard b(path("b.bin"), TokenFileFormat::Ringtrain);
  std::vector<int64_t> out(4);
  b.copy(0, 4, out.data());
  EXPECT_EQ(out, (std::vector<int64_t>{0, 65535, 65536, 4000000000LL}));

  TokenShardWriter narrow(path("c.bin"), 2);
  EXPECT_THROW(narrow.append(&wide[2], 1), DataError);  // 65536 does not fit uint16
}

TEST_F(TokenShardTest, HeaderIsValidated) {
  const auto file = writeShard("bad.bin", 100);
  patch(file, 0, "XXTOKENS");
  EXPECT_NE(messageOf([&] { TokenShard(file, TokenFileFormat::Ringtrain); }).find(file),
            std::string::npos);

  writeShard("bad.bin", 100);
  patch(file, 8, std::string("\x02\0\0\0", 4));  // version 2
  EXPECT_NE(messageOf([&] { TokenShard(file, TokenFileFormat::Ringtrain); }).find("version 2"),
            std::string::npos);

  writeShard("bad.bin", 100);
  patch(file, 12, std::string("\x03\0\0\0", 4));  // 3 bytes per token
  EXPECT_THROW(TokenShard(file, TokenFileFormat::Ringtrain), DataError);

  writeShard("bad.bin", 100);
  fs::resize_file(file, fs::file_size(file) - 2);  // truncated
  EXPECT_NE(messageOf([&] { TokenShard(file, TokenFileFormat::Ringtrain); }).find("declares 100"),
            std::string::npos);

  {  // a writer that never finished leaves count 0 with tokens after the header
    TokenShardWriter unfinished(path("partial.bin"), 2);
    const std::vector<uint32_t> t = {1, 2, 3};
    unfinished.append(t.data(), t.size());
  }
  EXPECT_THROW(TokenShard(path("partial.bin"), TokenFileFormat::Ringtrain), DataError);

  std::ofstream(path("tiny.bin")) << "RT";
  EXPECT_THROW(TokenShard(path("tiny.bin"), TokenFileFormat::Ringtrain), DataError);
  EXPECT_THROW(TokenShard(path("missing.bin"), TokenFileFormat::Ringtrain), DataError);
}

TEST_F(TokenShardTest, ReadsHeaderlessNanoGptFiles) {
  {
    std::ofstream out(path("train.bin"), std::ios::binary);
    for (uint16_t t : {7, 300, 65535})
      out.put(static_cast<char>(t & 0xFF)).put(static_cast<char>(t >> 8));
  }
  TokenShard shard(path("train.bin"), TokenFileFormat::NanoGpt);
  ASSERT_EQ(shard.size(), 3);
  EXPECT_EQ(shard.at(0), 7);
  EXPECT_EQ(shard.at(1), 300);
  EXPECT_EQ(shard.at(2), 65535);
  std::ofstream(path("val.bin"), std::ios::binary) << "abc";  // odd size
  EXPECT_THROW(TokenShard(path("val.bin"), TokenFileFormat::NanoGpt), DataError);
  // A ringtrain shard is not mistaken for a headerless file's tokens, and vice versa.
  EXPECT_THROW(TokenShard(path("train.bin"), TokenFileFormat::Ringtrain), DataError);
}

TEST_F(TokenShardTest, WindowsStayInsideTheirShardAndTargetsAreShiftedInputs) {
  // Shards of 100, 9 (exactly one window of 8 + 1), 8 (none) and 50 tokens, block 8.
  const std::vector<std::string> paths = {
      writeShard("s0.bin", 100, 2, 0), writeShard("s1.bin", 9, 2, 1000),
      writeShard("s2.bin", 8, 2, 2000), writeShard("s3.bin", 50, 2, 3000)};
  TokenDataset data(paths, 8, TokenFileFormat::Ringtrain);
  EXPECT_EQ(data.size(), 99 / 8 + 1 + 0 + 49 / 8);
  EXPECT_EQ(data.tokenCount(), 167);
  for (int64_t i = 0; i < data.size(); ++i) {
    const auto w = data.window(i);
    EXPECT_GE(w.begin, 0);
    EXPECT_LE(w.begin + 8 + 1, data.shards()[static_cast<size_t>(w.shard)].size()) << i;
    EXPECT_NE(w.shard, 2);
  }
  EXPECT_EQ(data.window(12).shard, 1);  // shard 0 has windows 0..11
  EXPECT_EQ(data.window(13).shard, 3);
  EXPECT_THROW(data.window(data.size()), DataError);
  EXPECT_THROW(data.get({-1}), DataError);

  const Batch b = data.get({0, 12, 13});
  ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{3, 8}));
  ASSERT_EQ(b.targets.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(b.inputs.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(b.inputs[0], torch::arange(0, 8, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.targets[0], torch::arange(1, 9, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.inputs[1], torch::arange(1000, 1008, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.targets[2], torch::arange(3001, 3009, torch::kLong)));
}

TEST_F(TokenShardTest, RanksReadDisjointTokenRangesAndEpochsReshuffle) {
  TokenDataset data({writeShard("a.bin", 5000), writeShard("b.bin", 3001)}, 16,
                    TokenFileFormat::Ringtrain);
  const int world = 3;
  const int64_t batch = 5;
  std::set<std::pair<int64_t, int64_t>> seen;  // (shard, token) of every input token
  std::vector<int64_t> firstStepEpoch0, firstStepEpoch1;
  for (int rank = 0; rank < world; ++rank) {
    const ShardSampler sampler(data.size(), batch, rank, world, 42, true);
    for (int64_t step = 0; step < sampler.stepsPerEpoch(); ++step) {
      for (const int64_t i : sampler.indices(0, step)) {
        const auto w = data.window(i);
        for (int64_t t = w.begin; t < w.begin + 16; ++t) {
          EXPECT_TRUE(seen.insert({w.shard, t}).second)
              << "token " << t << " of shard " << w.shard << " read twice (rank " << rank << ")";
        }
      }
    }
    if (rank == 0) {
      firstStepEpoch0 = sampler.indices(0, 0);
      firstStepEpoch1 = sampler.indices(1, 0);
    }
  }
  const int64_t steps = data.size() / (world * batch);
  EXPECT_EQ(static_cast<int64_t>(seen.size()), steps * world * batch * 16);
  EXPECT_NE(firstStepEpoch0, firstStepEpoch1);
}

TEST_F(TokenShardTest, LoaderResumesFromACursorWithTheSameBatches) {
  auto data = std::make_shared<const TokenDataset>(
      std::vector<std::string>{writeShard("a.bin", 4000)}, 8, TokenFileFormat::Ringtrain);
  const ShardSampler sampler(data->size(), 4, 1, 2, 7, true);
  Loader full(data, sampler, 2, {1, 0});
  std::vector<torch::Tensor> expected;
  while (auto b = full.next()) expected.push_back(b->inputs);
  ASSERT_EQ(static_cast<int64_t>(expected.size()), sampler.stepsPerEpoch());

  Loader resumed(data, sampler, 2, {1, 10});
  for (size_t step = 10; step < expected.size(); ++step) {
    auto b = resumed.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(torch::equal(b->inputs, expected[step])) << "step " << step;
  }
  EXPECT_FALSE(resumed.next().has_value());
}

TEST_F(TokenShardTest, RegistryBuildsTrainAndValFromADirectory) {
  writeShard("train_000.bin", 300);
  writeShard("train_001.bin", 300);
  writeShard("val_000.bin", 100);
  DataConfig cfg;
  cfg.name = "tokens";
  cfg.dir = dir_;
  cfg.block_size = 0;
  EXPECT_THROW(makeDataset(cfg, Split::Train), ConfigError);  // block_size unset
  cfg.block_size = 10;
  EXPECT_EQ(makeDataset(cfg, Split::Train)->size(), 2 * (299 / 10));
  EXPECT_EQ(makeDataset(cfg, Split::Test)->size(), 99 / 10);
  cfg.token_format = "nanogpt";  // looks for train.bin: not there
  EXPECT_THROW(makeDataset(cfg, Split::Train), DataError);
  cfg.token_format = "ringtrain";
  cfg.dir = path("nowhere");
  EXPECT_THROW(makeDataset(cfg, Split::Train), DataError);
}

TEST_F(TokenShardTest, UnigramEntropy) {
  TokenShardWriter writer(path("u.bin"), 4);
  const std::vector<uint32_t> tokens = {0, 0, 1, 1, 70000, 70000, 70000, 70000};
  writer.append(tokens.data(), tokens.size());
  writer.finish();
  TokenDataset data({path("u.bin")}, 2, TokenFileFormat::Ringtrain);
  // p = 1/4, 1/4, 1/2
  EXPECT_NEAR(data.unigramEntropy(), 1.5 * std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(entropyOfCounts({5, 0, 0}), 0.0);
}

TEST_F(TokenShardTest, PrepareTextSplitsEveryFileAndKeepsTheBytes) {
  const std::string a(1000, 'a'), b = std::string(500, 'b') + std::string(500, 'c');
  std::ofstream(path("a.txt"), std::ios::binary) << a;
  std::ofstream(path("b.txt"), std::ios::binary) << b;
  TextPrepOptions options;
  options.inputs = {path("a.txt"), path("b.txt")};
  options.outDir = path("out");
  options.shards = 3;
  options.valFraction = 0.1;
  int64_t lastDone = 0, lastTotal = 0;
  options.progress = [&](int64_t done, int64_t total) { lastDone = done, lastTotal = total; };
  fs::create_directories(options.outDir);
  std::ofstream(path("out/train_007.bin")) << "stale";
  const auto result = prepareText(options);
  EXPECT_EQ(lastDone, 2000);
  EXPECT_EQ(lastTotal, 2000);
  EXPECT_EQ(result.trainTokens, 1800);
  EXPECT_EQ(result.valTokens, 200);
  ASSERT_EQ(result.trainFiles.size(), 3u);
  EXPECT_FALSE(fs::exists(path("out/train_007.bin")));
  EXPECT_TRUE(fs::exists(path("out/meta.yaml")));

  std::string train, val;
  for (const auto& f : result.trainFiles) {
    TokenShard s(f, TokenFileFormat::Ringtrain);
    EXPECT_NEAR(static_cast<double>(s.size()), 600.0, 1.0);
    for (int64_t i = 0; i < s.size(); ++i) train += static_cast<char>(s.at(i));
  }
  TokenShard v(result.valFiles.at(0), TokenFileFormat::Ringtrain);
  for (int64_t i = 0; i < v.size(); ++i) val += static_cast<char>(v.at(i));
  EXPECT_EQ(train, a.substr(0, 900) + b.substr(0, 900));
  EXPECT_EQ(val, a.substr(900) + b.substr(900));
  // Train bytes: 900 'a', 500 'b', 400 'c'.
  const double pa = 0.5, pb = 500.0 / 1800, pc = 400.0 / 1800;
  EXPECT_NEAR(result.unigramEntropy, -(pa * std::log(pa) + pb * std::log(pb) + pc * std::log(pc)),
              1e-9);

  options.inputs = {dir_};
  EXPECT_THROW(prepareText(options), ConfigError);  // a directory
  options.inputs = {path("missing.txt")};
  EXPECT_THROW(prepareText(options), DataError);
  options.inputs = {path("a.txt")};
  options.valFraction = 1.0;
  EXPECT_THROW(prepareText(options), ConfigError);
}

}  // namespace
}  // namespace ringtrain
