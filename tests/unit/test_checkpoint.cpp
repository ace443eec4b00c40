#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "models/registry.h"
#include "tests/unit/test_dir.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/resume.h"
#include "trainer/optim/optimizer.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runDir_ = freshTestDirectory("ckpt");
    model_ = makeModel("fashion_mlp");
    optimizer_ = makeOptimizer(OptimizerConfig(), model_->parameters());
  }
  void TearDown() override {
    fs::permissions(runDir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(runDir_);
  }
  std::string save(CheckpointStore& store, int64_t step, int keepLast = 10,
                   std::vector<std::string>* warnings = nullptr) {
    TrainingState state;
    state.step = step;
    state.modelName = "fashion_mlp";
    state.modelFingerprint = moduleFingerprint(*model_);
    return store.save(*model_, *optimizer_, state, "model:\n  name: fashion_mlp\n", keepLast,
                      [warnings](const std::string& w) {
                        if (warnings) warnings->push_back(w);
                      });
  }
  static std::string readAll(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void writeAll(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  // One SGD-with-momentum step on a fixed batch, so optimizer state exists and matters.
  static void trainOnce(Model& model, torch::optim::Optimizer& optimizer) {
    torch::manual_seed(7);
    const auto x = torch::randn({8, 1, 28, 28});
    const auto y = torch::randint(0, 10, {8}, torch::kInt64);
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model.forward(x), y).backward();
    optimizer.step();
  }
  fs::path runDir_;
  ModelPtr model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

TEST_F(CheckpointTest, RoundTripRestoresParametersAndState) {
  CheckpointStore store(runDir_.string());
  const auto dir = save(store, 7);
  EXPECT_NO_THROW(verifyCheckpoint(dir));
  const auto expected = model_->parameters()[0].detach().clone();
  auto other = makeModel("fashion_mlp");
  loadCheckpoint(dir, *other, nullptr, false);
  EXPECT_TRUE(torch::equal(other->parameters()[0], expected));
  const auto state = readTrainingState(dir);
  EXPECT_EQ(state.step, 7);
  EXPECT_EQ(state.modelFingerprint, moduleFingerprint(*model_));
  // No temporary directory is left behind.
  for (const auto& e : fs::directory_iterator(store.directory())) {
    EXPECT_EQ(e.path().filename().string().rfind("step-", 0), 0u) << e.path();
  }
}

TEST_F(CheckpointTest, KeepLastRemovesOnlyOlderCheckpoints) {
  CheckpointStore store(runDir_.string());
  for (int64_t step : {10, 20, 30, 40}) save(store, step, /*keepLast=*/2);
  const auto all = store.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_NE(all[0].find("step-00000030"), std::string::npos);
  EXPECT_NE(all[1].find("step-00000040"), std::string::npos);
}

TEST_F(CheckpointTest, CorruptNewestIsSkippedWithWarning) {
  CheckpointStore store(runDir_.string());
  save(store, 1);
  const auto newest = save(store, 2);
  {
    std::fstream f(fs::path(newest) / "model.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  std::vector<std::string> warnings;
  const auto chosen = store.latestValid([&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(chosen.has_value());
  EXPECT_NE(chosen->find("step-00000001"), std::string::npos);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("step-00000002"), std::string::npos);
  EXPECT_NE(warnings[0].find("corrupt"), std::string::npos);
}

TEST_F(CheckpointTest, MissingManifestAndAllCorruptGiveClearError) {
  CheckpointStore store(runDir_.string());
  const auto dir = save(store, 3);
  fs::remove(fs::path(dir) / "MANIFEST");
  try {
    resolveCheckpoint(runDir_.string(), nullptr);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no valid checkpoint"), std::string::npos);
  }
}

TEST_F(CheckpointTest, UnwritableDirectoryFailsAndKeepsPreviousCheckpoint) {
  if (::geteuid() == 0) {
    // root ignores permission bits: make the run directory a regular file instead.
    CheckpointStore store(runDir_.string());
    const auto first = save(store, 1);
    const auto bogus = runDir_ / "not-a-dir";
    std::ofstream(bogus) << "x";
    CheckpointStore broken(bogus.string());
    EXPECT_THROW(save(broken, 2), CheckpointError);
    EXPECT_NO_THROW(verifyCheckpoint(first));
    return;
  }
  CheckpointStore store(runDir_.string());
  const auto first = save(store, 1);
  fs::permissions(store.directory(), fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(save(store, 2), CheckpointError);
  fs::permissions(store.directory(), fs::perms::owner_all);
  EXPECT_NO_THROW(verifyCheckpoint(first));
}

TEST_F(CheckpointTest, ResumedOptimizerAndRngContinueBitwiseIdentically) {
  OptimizerConfig sgd;
  sgd.momentum = 0.9;
  optimizer_ = makeOptimizer(sgd, model_->parameters());
  trainOnce(*model_, *optimizer_);
  trainOnce(*model_, *optimizer_);
  CheckpointStore store(runDir_.string());
  const auto dir = save(store, 2);
  const auto expectedRandom = torch::rand({4});

  auto resumed = makeModel("fashion_mlp");
  auto resumedOptimizer = makeOptimizer(sgd, resumed->parameters());
  loadCheckpoint(dir, *resumed, resumedOptimizer.get(), /*restoreRng=*/true);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expectedRandom)) << "RNG state not restored";

  // The momentum buffers came back: the next step is bitwise the same on both.
  trainOnce(*model_, *optimizer_);
  trainOnce(*resumed, *resumedOptimizer);
  const auto a = model_->parameters();
  const auto b = resumed->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST_F(CheckpointTest, StateRecordsCursorScheduleAndWorldSize) {
  CheckpointStore store(runDir_.string());
  TrainingState state;
  state.step = 40;
  state.epoch = 1;
  state.stepInEpoch = 12;
  state.worldSize = 4;
  state.totalSteps = 900;
  state.learningRate = 0.0123456789012345;
  state.modelName = "fashion_mlp";
  state.modelFingerprint = moduleFingerprint(*model_);
  state.configHash = stableHash("cfg");
  const auto dir = store.save(*model_, *optimizer_, state, "x: 1\n", 3);
  const auto read = readTrainingState(dir);
  EXPECT_EQ(read.step, 40);
  EXPECT_EQ(read.epoch, 1);
  EXPECT_EQ(read.stepInEpoch, 12);
  EXPECT_EQ(read.worldSize, 4);
  EXPECT_EQ(read.totalSteps, 900);
  EXPECT_DOUBLE_EQ(read.learningRate, state.learningRate);
  EXPECT_EQ(read.configHash, state.configHash);
  EXPECT_EQ(checkpointStep(dir), 40);
  EXPECT_EQ(readAll(fs::path(dir) / "config.yaml"), "x: 1\n");
}

TEST_F(CheckpointTest, DamagedOrTruncatedFilesAreNamed) {
  CheckpointStore store(runDir_.string());
  const auto dir = save(store, 5);
  const auto manifest = readAll(fs::path(dir) / "MANIFEST");
  // A flipped digit in the manifest itself.
  auto damaged = manifest;
  damaged[damaged.find(' ') + 1] = damaged[damaged.find(' ') + 1] == '1' ? '2' : '1';
  writeAll(fs::path(dir) / "MANIFEST", damaged);
  try {
    verifyCheckpoint(dir);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("damaged MANIFEST"), std::string::npos) << e.what();
  }
  // A truncated data file.
  writeAll(fs::path(dir) / "MANIFEST", manifest);
  EXPECT_NO_THROW(verifyCheckpoint(dir));
  const auto model = readAll(fs::path(dir) / "model.pt");
  writeAll(fs::path(dir) / "model.pt", model.substr(0, model.size() / 2));
  try {
    verifyCheckpoint(dir);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("model.pt is corrupt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  // A checkpoint directory given directly must be valid itself, not "a run directory".
  fs::remove(fs::path(dir) / "MANIFEST");
  try {
    resolveCheckpoint(dir, nullptr);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no MANIFEST"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, RetentionKeepsTheNewOneAndDropsAnAbandonedTimeline) {
  CheckpointStore store(runDir_.string());
  for (int64_t step : {10, 20, 30, 40}) save(store, step, /*keepLast=*/4);
  // Resumed from step 10 and saving step 15: 20..40 belong to the abandoned run and must
  // not be picked by a later --resume auto; 15 itself must survive keepLast.
  std::vector<std::string> warnings;
  save(store, 15, /*keepLast=*/2, &warnings);
  const auto all = store.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(checkpointStep(all[0]), 10);
  EXPECT_EQ(checkpointStep(all[1]), 15);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[0].find("step-00000040"), std::string::npos) << warnings[0];
}

TEST_F(CheckpointTest, InvalidCheckpointsDoNotCountTowardsKeepLast) {
  CheckpointStore store(runDir_.string());
  save(store, 1);
  const auto broken = save(store, 2);
  fs::remove(fs::path(broken) / "MANIFEST");
  save(store, 3, /*keepLast=*/2);
  const auto all = store.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(checkpointStep(all[0]), 1);  // the newest older *valid* one
  EXPECT_EQ(checkpointStep(all[1]), 3);
}

TEST_F(CheckpointTest, CrashLeftoversAreIgnoredThenCleanedAndStepsSortNumerically) {
  CheckpointStore store(runDir_.string());
  save(store, 9);
  save(store, 100000000);  // nine digits: sorts after step-00000009 by number
  const auto leftover = fs::path(store.directory()) / ".step-100000001.tmp";
  fs::create_directories(leftover);
  writeAll(leftover / "model.pt", "partial");
  std::vector<std::string> warnings;
  const auto latest = store.latestValid([&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(latest.has_value()) << (warnings.empty() ? "" : warnings[0]);
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  EXPECT_EQ(checkpointStep(*latest), 100000000);
  save(store, 100000002);
  EXPECT_FALSE(fs::exists(leftover));
  // Re-saving a step replaces it and leaves no hidden directory behind.
  save(store, 100000002);
  for (const auto& e : fs::directory_iterator(store.directory())) {
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  }
}

TEST_F(CheckpointTest, ModelMismatchIsDescribedAndLoadRefused) {
  CheckpointStore store(runDir_.string());
  const auto dir = save(store, 1);
  EXPECT_EQ(describeModelMismatch(dir, *model_), "");

  torch::nn::Module wider;
  wider.register_module("fc1", torch::nn::Linear(784, 512));
  wider.register_module("fc2", torch::nn::Linear(512, 128));
  wider.register_module("fc3", torch::nn::Linear(128, 10));
  EXPECT_EQ(describeModelMismatch(dir, wider),
            "fc1.weight is [256, 784] in the checkpoint but [512, 784] in this model");
  try {
    loadCheckpoint(dir, wider, nullptr, false);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
  auto cnn = makeModel("fashion_cnn");
  EXPECT_NE(describeModelMismatch(dir, *cnn).find("conv1.weight"), std::string::npos);
  torch::nn::Module smaller;
  smaller.register_module("fc1", torch::nn::Linear(784, 256));
  EXPECT_EQ(describeModelMismatch(dir, smaller).find("the checkpoint has fc"), 0u);
}

TEST_F(CheckpointTest, FullFileSystemFailsWithItsCauseAndKeepsThePrevious) {
  CheckpointStore store(runDir_.string());
  const auto first = save(store, 1);
  // RLIMIT_FSIZE makes writes past 64 KiB fail with EFBIG, as a full disk fails them with
  // ENOSPC; SIGXFSZ is ignored so the write returns the error instead of killing us.
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* oldHandler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = old;
  limited.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::string message;
  try {
    save(store, 2);
  } catch (const CheckpointError& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, oldHandler);
  EXPECT_NE(message.find("step-00000002"), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_NO_THROW(verifyCheckpoint(first));
  ASSERT_EQ(store.list().size(), 1u);
  for (const auto& e : fs::directory_iterator(store.directory())) {
    EXPECT_EQ(e.path().filename(), "step-00000001") << "left behind: " << e.path();
  }
}

TEST(Resume, ConfigDifferencesNameKeysAndValues) {
  const std::string before =
      "model:\n  name: fashion_mlp\n  options: {}\ntrain:\n  max_steps: 20\n";
  const std::string after =
      "model:\n  name: fashion_mlp\n  options: {hidden: 3}\ntrain:\n  max_steps: 60\n  seed: 1\n";
  const auto d = configDifferences(before, after);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], "model.options: {} -> {hidden: 3}");
  EXPECT_EQ(d[1], "train.max_steps: 20 -> 60");
  EXPECT_EQ(d[2], "train.seed: (unset) -> 1");
  EXPECT_TRUE(configDifferences(after, after).empty());
}

TEST(Resume, MetricsAfterTheCheckpointAreDiscarded) {
  const auto path = fs::temp_directory_path() / ("ringtrain-metrics-" + std::to_string(::getpid()));
  std::ofstream(path) << "{\"kind\":\"train\",\"step\":10,\"loss\":1}\n"
                      << "{\"kind\":\"eval\",\"step\":20,\"test_loss\":1}\n"
                      << "{\"kind\":\"train\",\"step\":30,\"loss\":1}\n";
  discardMetricsAfter(path.string(), 20);
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(),
            "{\"kind\":\"train\",\"step\":10,\"loss\":1}\n{\"kind\":\"eval\",\"step\":20,"
            "\"test_loss\":1}\n");
  fs::remove(path);
  EXPECT_NO_THROW(discardMetricsAfter(path.string(), 0));  // a missing file is fine
}

TEST(Fingerprint, DiffersWhenShapesDiffer) {
  auto a = makeModel("fashion_mlp");
  auto b = makeModel("fashion_cnn");
  EXPECT_NE(moduleFingerprint(*a), moduleFingerprint(*b));
  EXPECT_EQ(moduleFingerprint(*a), moduleFingerprint(*makeModel("fashion_mlp")));
  EXPECT_EQ(stableHash("ringtrain"), stableHash("ringtrain"));
  EXPECT_EQ(stableHash(""), "cbf29ce484222325");  // FNV-1a offset basis
}

}  // namespace
}  // namespace ringtrain
