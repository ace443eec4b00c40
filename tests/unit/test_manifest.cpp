// A checkpoint read as untrusted input: its MANIFEST never makes ringtrain open a file outside
// the checkpoint directory or through a symbolic link, never blocks on a FIFO, never
// allocates what a file does not hold, and what is loaded is what was checked.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "models/registry.h"
#include "tests/unit/test_dir.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/manifest.h"
#include "trainer/optim/optimizer.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeAll(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A MANIFEST whose own checksum is right, so only the checks of its content can refuse it.
void writeSignedManifest(const fs::path& dir, const std::string& body) {
  const auto crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()),
                         static_cast<uInt>(body.size()));
  writeAll(dir / "MANIFEST", body + "manifest-crc32 " + std::to_string(crc) + "\n");
}

std::string errorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "(no CheckpointError)";
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runDir_ = freshTestDirectory("manifest");
    model_ = makeModel("fashion_mlp");
    optimizer_ = makeOptimizer(OptimizerConfig(), model_->parameters());
    TrainingState state;
    state.step = 5;
    state.modelName = "fashion_mlp";
    state.modelFingerprint = moduleFingerprint(*model_);
    CheckpointStore store(runDir_.string());
    dir_ = store.save(*model_, *optimizer_, state, "model:\n  name: fashion_mlp\n", 3);
    manifest_ = readAll(dir_ / "MANIFEST");
  }
  void TearDown() override { fs::remove_all(runDir_); }

  // The manifest's entries without the trailer line.
  std::string body() const { return manifest_.substr(0, manifest_.rfind("manifest-crc32")); }

  fs::path runDir_;
  fs::path dir_;
  std::string manifest_;
  ModelPtr model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

TEST_F(ManifestTest, AnEntryOutsideTheDirectoryIsRefusedUnopened) {
  writeAll(runDir_ / "outside.txt", "secret\n");
  for (const std::string name : {"../../outside.txt", "/etc/hostname", "..", "."}) {
    writeSignedManifest(dir_, body() + name + " 7 0\n");
    const auto what = errorOf([&] { verifyCheckpoint(dir_.string()); });
    EXPECT_NE(what.find("not a file of the checkpoint directory"), std::string::npos)
        << name << ": " << what;
    EXPECT_THROW(readTrainingState(dir_.string()), CheckpointError) << name;
  }
}

TEST_F(ManifestTest, AnEntryListedTwiceIsRefused) {
  const std::string first = body().substr(0, body().find('\n') + 1);
  writeSignedManifest(dir_, body() + first);
  EXPECT_NE(errorOf([&] { verifyCheckpoint(dir_.string()); }).find("twice"), std::string::npos);
}

TEST_F(ManifestTest, ASymbolicLinkIsRefusedEvenToTheRightBytes) {
  // The link points at an identical copy: only the refusal of links can catch it.
  fs::copy_file(dir_ / "model.pt", runDir_ / "model-copy.pt");
  fs::remove(dir_ / "model.pt");
  fs::create_symlink(runDir_ / "model-copy.pt", dir_ / "model.pt");
  const auto what = errorOf([&] { verifyCheckpoint(dir_.string()); });
  EXPECT_NE(what.find("model.pt is a symbolic link"), std::string::npos) << what;
  auto other = makeModel("fashion_mlp");
  EXPECT_NE(
      errorOf([&] { loadCheckpoint(dir_.string(), *other, nullptr, false); }).find("symbolic link"),
      std::string::npos);

  fs::rename(dir_ / "MANIFEST", runDir_ / "MANIFEST.real");
  fs::create_symlink(runDir_ / "MANIFEST.real", dir_ / "MANIFEST");
  EXPECT_NE(errorOf([&] { verifyCheckpoint(dir_.string()); }).find("symbolic link"),
            std::string::npos);
}

TEST_F(ManifestTest, AFifoInPlaceOfAFileIsRefusedWithoutBlocking) {
  fs::remove(dir_ / "state.yaml");
  ASSERT_EQ(::mkfifo((dir_ / "state.yaml").c_str(), 0600), 0);
  EXPECT_NE(errorOf([&] { readTrainingState(dir_.string()); }).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { verifyCheckpoint(dir_.string()); }).find("not a regular file"),
            std::string::npos);
}

TEST_F(ManifestTest, AnOversizedManifestOrEntryAllocatesNothing) {
  writeAll(dir_ / "MANIFEST", std::string(1 << 20, 'x'));
  EXPECT_NE(errorOf([&] { verifyCheckpoint(dir_.string()); }).find("damaged MANIFEST"),
            std::string::npos);
  // An entry claiming 2^63 bytes: refused by the file's real size, before any allocation.
  std::string claimed;
  std::istringstream lines(body());
  for (std::string file, size, crc; lines >> file >> size >> crc;) {
    claimed +=
        file + ' ' + (file == "config.yaml" ? "9223372036854775807" : size) + ' ' + crc + '\n';
  }
  writeSignedManifest(dir_, claimed);
  const auto what = errorOf([&] { readCheckpointConfig(dir_.string()); });
  EXPECT_NE(what.find("the manifest says 9223372036854775807"), std::string::npos) << what;
}

TEST_F(ManifestTest, LoadingChecksTheBytesItParses) {
  // Changed after a reader chose the checkpoint (verifyCheckpoint passed): the load itself
  // must refuse it, not copy the changed weights into the model.
  ASSERT_NO_THROW(verifyCheckpoint(dir_.string()));
  const auto size = fs::file_size(dir_ / "model.pt");
  {
    std::fstream f(dir_ / "model.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\x55');
    f.seekp(static_cast<std::streamoff>(size / 2 + 1));
    f.put('\x55');
  }
  auto other = makeModel("fashion_mlp");
  const auto what = errorOf([&] { loadCheckpoint(dir_.string(), *other, nullptr, false); });
  EXPECT_NE(what.find("model.pt is corrupt (checksum mismatch)"), std::string::npos) << what;

  writeAll(dir_ / "state.yaml", "step: 999999\n");
  EXPECT_NE(errorOf([&] { readTrainingState(dir_.string()); }).find("state.yaml is corrupt"),
            std::string::npos);
}

TEST(ManifestNames, OnlyPlainComponentsArePlainFileNames) {
  EXPECT_TRUE(isPlainFileName("model.pt"));
  EXPECT_TRUE(isPlainFileName("...hidden"));
  EXPECT_FALSE(isPlainFileName(""));
  EXPECT_FALSE(isPlainFileName("."));
  EXPECT_FALSE(isPlainFileName(".."));
  EXPECT_FALSE(isPlainFileName("a/b"));
  EXPECT_FALSE(isPlainFileName("/abs"));
  EXPECT_FALSE(isPlainFileName(std::string(256, 'a')));
  EXPECT_FALSE(isPlainFileName(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace ringtrain
