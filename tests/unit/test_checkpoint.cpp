#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "models/registry.h"
#include "trainer/checkpoint.h"
#include "trainer/error.h"
#include "trainer/optim.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runDir_ = fs::temp_directory_path() /
              ("ringtrain-ckpt-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(runDir_);
    model_ = makeModel("fashion_mlp");
    optimizer_ = makeOptimizer(OptimizerConfig(), model_->parameters());
  }
  void TearDown() override {
    fs::permissions(runDir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(runDir_);
  }
  std::string save(CheckpointStore& store, int64_t step, int keepLast = 10) {
    TrainingState state;
    state.step = step;
    state.modelName = "fashion_mlp";
    state.modelFingerprint = moduleFingerprint(*model_);
    return store.save(*model_, *optimizer_, state, "model:\n  name: fashion_mlp\n", keepLast);
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
