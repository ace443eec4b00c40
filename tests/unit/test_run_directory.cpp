// The run directory's ownership (trainer/checkpoint/run_directory.h): one job holds the lock,
// a second is refused naming the first, a dead holder leaves no stale lock, and a fresh run
// never lands in an earlier run's files (refused, or moved aside with --overwrite, never
// deleted). Also the config's run-name confinement and the keys ranks must agree on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tests/unit/test_dir.h"
#include "trainer/checkpoint/run_directory.h"
#include "trainer/config/config.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

class RunDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = freshTestDirectory("rundir");
    run_ = (base_ / "run").string();
  }
  void TearDown() override { fs::remove_all(base_); }
  void writeFile(const std::string& name, const std::string& text) {
    fs::create_directories(fs::path(run_ / fs::path(name)).parent_path());
    std::ofstream(fs::path(run_) / name) << text;
  }
  static std::string readFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  fs::path base_;
  std::string run_;
};

template <typename F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.kind()) + ": " + e.what() + " HINT: " + e.hint();
  }
  return "";
}

TEST_F(RunDirectoryTest, SecondHolderIsRefusedNamingTheFirstAndTheLockDiesWithIt) {
  std::optional<RunDirectoryLock> first(std::in_place, run_);
  EXPECT_TRUE(first->warning().empty());
  const std::string holder = readFile(fs::path(run_) / kRunLockFile);
  EXPECT_NE(holder.find(" " + std::to_string(::getpid()) + " "), std::string::npos) << holder;

  // flock belongs to the open file: a second open in this process conflicts like another job.
  const std::string refused = errorOf([&] { RunDirectoryLock second(run_); });
  EXPECT_NE(refused.find("run directory: run directory " + run_ + " is in use by the job of pid " +
                         std::to_string(::getpid()) + " on host "),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("another --run-dir"), std::string::npos) << refused;
  try {
    RunDirectoryLock second(run_);
    FAIL() << "no error";
  } catch (const RunDirError& e) {
    EXPECT_EQ(e.exitCode(), kExitRunDir);
  }

  // The holder's end releases it; its lock file stays behind, and is no obstacle.
  first.reset();
  EXPECT_TRUE(fs::exists(fs::path(run_) / kRunLockFile));
  EXPECT_EQ(errorOf([&] { RunDirectoryLock again(run_); }), "");
}

TEST_F(RunDirectoryTest, FreshRunStartsInAMissingOrEmptyDirectory) {
  EXPECT_FALSE(prepareFreshRunDirectory(run_, false));  // missing
  const RunDirectoryLock lock(run_);                    // creates it with the lock file only
  EXPECT_FALSE(prepareFreshRunDirectory(run_, false));
  EXPECT_FALSE(prepareFreshRunDirectory(run_, true));
  EXPECT_FALSE(fs::exists(run_ + ".replaced-"));
  for (const auto& e : fs::directory_iterator(base_)) {
    EXPECT_EQ(e.path().filename(), "run");  // nothing was moved aside
  }
}

TEST_F(RunDirectoryTest, EarlierRunIsRefusedOrMovedAsideWhole) {
  const RunDirectoryLock lock(run_);
  writeFile("metrics.jsonl", "{\"kind\":\"train\",\"step\":1}\n");
  writeFile("checkpoints/step-00000010/MANIFEST", "manifest");

  const std::string refused = errorOf([&] { prepareFreshRunDirectory(run_, false); });
  EXPECT_NE(refused.find("run directory " + run_ + " holds an earlier run ("), std::string::npos)
      << refused;
  EXPECT_NE(refused.find("--resume auto"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--overwrite"), std::string::npos) << refused;
  EXPECT_TRUE(fs::exists(fs::path(run_) / "metrics.jsonl"));  // refusing touches nothing

  const auto aside = prepareFreshRunDirectory(run_, true);
  ASSERT_TRUE(aside);
  EXPECT_EQ(aside->rfind(run_ + ".replaced-", 0), 0u) << *aside;
  EXPECT_EQ(readFile(fs::path(*aside) / "metrics.jsonl"), "{\"kind\":\"train\",\"step\":1}\n");
  EXPECT_EQ(readFile(fs::path(*aside) / "checkpoints/step-00000010/MANIFEST"), "manifest");
  // What is left is the lock this job holds: the new run starts clean.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(run_)) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{kRunLockFile});
  EXPECT_FALSE(fs::exists(fs::path(*aside) / kRunLockFile));

  // A second overwrite in the same second gets a directory of its own.
  writeFile("metrics.jsonl", "second\n");
  const auto again = prepareFreshRunDirectory(run_, true);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *aside);
  EXPECT_EQ(readFile(fs::path(*again) / "metrics.jsonl"), "second\n");
  EXPECT_EQ(readFile(fs::path(*aside) / "metrics.jsonl"), "{\"kind\":\"train\",\"step\":1}\n");
}

TEST(RunName, IsOneDirectoryName) {
  for (const std::string good : {"fashion", "run-1.b", "a b", "..x"}) {
    EXPECT_NO_THROW(checkRunName(good)) << good;
    EXPECT_NO_THROW(Config::fromYaml("", "x", {"train.run_name=" + good})) << good;
  }
  for (const std::string bad : {"", ".", "..", "../escape", "/abs/path", "a/b", "x/.."}) {
    try {
      checkRunName(bad, 3);
      FAIL() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("train.run_name '" + bad + "' is not a name"),
                std::string::npos)
          << e.what();
      EXPECT_NE(e.hint().find("--run-dir"), std::string::npos);
      EXPECT_EQ(e.rank(), 3);
    }
  }
  EXPECT_THROW(Config::fromYaml("", "x", {"train.run_name=../up"}), ConfigError);
  EXPECT_THROW(Config::fromYaml("train:\n  run_name: /tmp/x\n", "x"), ConfigError);
}

TEST(AgreedLines, EveryKeyButThePerRankOnesInSchemaOrder) {
  Config c = Config::fromYaml(
      "model:\n  name: gpt\n  options: {n_layer: 2, n_embd: 64}\noptimizer:\n  lr: 0.25\n", "x");
  const auto lines = c.agreedLines();
  const auto has = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  EXPECT_EQ(lines.front(), "model.name: gpt");
  EXPECT_TRUE(has("model.options: {n_layer: 2, n_embd: 64}")) << lines[1];
  EXPECT_TRUE(has("optimizer.lr: 0.25"));
  EXPECT_TRUE(has("data.batch_size: 64"));
  EXPECT_TRUE(has("train.seed: " + std::to_string(c.train.seed)));
  for (const std::string perRank :
       {"data.dir", "data.prefetch", "train.threads", "train.retain_host_memory"}) {
    for (const auto& line : lines) EXPECT_NE(line.rfind(perRank + ":", 0), 0u) << line;
  }
  // A per-rank key changes nothing; any other key changes its line.
  Config d = c;
  d.data.dir = "/elsewhere";
  d.train.threads = 7;
  EXPECT_EQ(d.agreedLines(), lines);
  d.optimizer.lr = 0.5;
  EXPECT_NE(d.agreedLines(), lines);
}

}  // namespace
}  // namespace ringtrain
