#include "trainer/report/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace ringtrain {

namespace {

constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

// Protocol-buffer wire format: a field's key is (number << 3) | wire type.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void putVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void putKey(std::string& out, uint32_t field, WireType type) {
  putVarint(out, (field << 3) | type);
}

template <typename T>
void putLittleEndian(std::string& out, T value) {
  // x86-64 and AArch64 Linux are little-endian, as the wire format is.
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void putBytes(std::string& out, uint32_t field, const std::string& bytes) {
  putKey(out, field, kLengthDelimited);
  putVarint(out, bytes.size());
  out += bytes;
}

// Event's wall_time (1) and step (2).
std::string eventHeader(double wallTime, int64_t step) {
  std::string event;
  putKey(event, 1, kFixed64);
  putLittleEndian(event, wallTime);
  putKey(event, 2, kVarint);
  putVarint(event, static_cast<uint64_t>(step));  // int64: two's complement, as protobuf does
  return event;
}

double secondsSinceEpoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrcTable[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t maskedCrc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string scalarsEvent(double wallTime, int64_t step, const std::string& prefix,
                         const std::vector<std::pair<std::string, double>>& fields) {
  std::string summary;
  for (const auto& [key, value] : fields) {
    std::string entry;
    putBytes(entry, 1, prefix + "/" + key);
    putKey(entry, 2, kFixed32);
    putLittleEndian(entry, static_cast<float>(value));
    putBytes(summary, 1, entry);
  }
  std::string event = eventHeader(wallTime, step);
  putBytes(event, 5, summary);
  return event;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = (std::filesystem::path(dir) /
           ("events.out.tfevents." + std::to_string(static_cast<int64_t>(secondsSinceEpoch())) +
            "." + host + "." + std::to_string(getpid()) + ".ringtrain"))
              .string();
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) {
    throw Error("cannot create the TensorBoard event file " + path_,
                "check that the run directory is writable, or set metrics.tensorboard: false");
  }
  std::string event = eventHeader(secondsSinceEpoch(), 0);
  putBytes(event, 3, "brain.Event:2");
  writeRecord(event);
}

void TensorBoardWriter::record(const std::string& kind,
                               const std::vector<std::pair<std::string, double>>& fields) {
  int64_t step = 0;
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& field : fields) {
    if (field.first == "step") {
      step = static_cast<int64_t>(field.second);
    } else {
      scalars.push_back(field);
    }
  }
  writeRecord(scalarsEvent(secondsSinceEpoch(), step, kind, scalars));
}

void TensorBoardWriter::restartAt(int64_t step) {
  std::string sessionLog;
  putKey(sessionLog, 1, kVarint);
  putVarint(sessionLog, 1);  // SessionLog.START
  std::string event = eventHeader(secondsSinceEpoch(), step);
  putBytes(event, 7, sessionLog);
  writeRecord(event);
}

void TensorBoardWriter::writeRecord(const std::string& event) {
  std::string record;
  const uint64_t length = event.size();
  putLittleEndian(record, length);
  putLittleEndian(record, maskedCrc32c(record.data(), sizeof length));
  record += event;
  putLittleEndian(record, maskedCrc32c(event.data(), event.size()));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  out_.flush();
  if (!out_)
    throw Error("cannot write the TensorBoard event file " + path_, "check free disk space");
}

}  // namespace ringtrain
