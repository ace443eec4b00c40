// The TensorBoard event encoder (trainer/report/tensorboard.h): CRC-32C against its published
// check value and RFC 3720's test vectors, the TFRecord framing of a written file, and the
// protocol-buffer bytes of a scalar event. (tests/e2e/tensorboard.sh reads whole runs back
// with the tensorboard package.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "trainer/report/tensorboard.h"

namespace ringtrain {
namespace {

TEST(TensorBoard, Crc32cMatchesTheCheckValueAndRfc3720) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  // Continuing a CRC over a split buffer gives the CRC of the whole.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
}

TEST(TensorBoard, ScalarEventIsTheProtobufEncoding) {
  const std::string event = scalarsEvent(1.5, 300, "train", {{"loss", 0.25}});
  std::string expected;
  expected += '\x09';  // field 1, fixed64: wall_time
  double wall = 1.5;
  expected.append(reinterpret_cast<const char*>(&wall), 8);
  expected += "\x10\xac\x02";  // field 2, varint 300: step
  expected += "\x2a\x13";      // field 5, 19 bytes: summary
  expected += "\x0a\x11";      // Summary.value, 17 bytes
  expected +=
      "\x0a\x0a"
      "train/loss";    // Value.tag
  expected += '\x15';  // Value.simple_value, fixed32
  float value = 0.25f;
  expected.append(reinterpret_cast<const char*>(&value), 4);
  EXPECT_EQ(event, expected);
}

TEST(TensorBoard, RecordsAreFramedWithMaskedCrcs) {
  const auto dir = std::filesystem::temp_directory_path() / "ringtrain_tensorboard_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path;
  {
    TensorBoardWriter writer(dir.string());
    writer.record("eval", {{"step", 7}, {"test_accuracy", 0.5}});
    path = writer.path();
  }
  EXPECT_NE(std::filesystem::path(path).filename().string().find("events.out.tfevents."),
            std::string::npos);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  int records = 0;
  while (at < bytes.size()) {
    ASSERT_LE(at + 12, bytes.size());
    uint64_t length = 0;
    std::memcpy(&length, bytes.data() + at, 8);
    uint32_t lengthCrc = 0;
    std::memcpy(&lengthCrc, bytes.data() + at + 8, 4);
    EXPECT_EQ(lengthCrc, maskedCrc32c(bytes.data() + at, 8));
    ASSERT_LE(at + 12 + length + 4, bytes.size());
    uint32_t dataCrc = 0;
    std::memcpy(&dataCrc, bytes.data() + at + 12 + length, 4);
    EXPECT_EQ(dataCrc, maskedCrc32c(bytes.data() + at + 12, length));
    if (records == 0) {
      EXPECT_NE(bytes.substr(at + 12, length).find("brain.Event:2"), std::string::npos);
    }
    at += 12 + length + 4;
    ++records;
  }
  EXPECT_EQ(records, 2);  // file_version, then the scalar
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringtrain
