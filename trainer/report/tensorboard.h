// TensorBoard event files, written without TensorFlow or a protobuf library: the TFRecord
// framing (little-endian uint64 length, masked CRC-32C of those 8 bytes, the record, masked
// CRC-32C of the record) around Event messages encoded by hand. Only five messages and a
// dozen fields are needed (tensorboard/compat/proto/event.proto and summary.proto):
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
//                Summary summary = 5; SessionLog session_log = 7; }
//   Summary    { repeated Value value = 1; }
//   Value      { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }   START = 1
// A SessionLog START at step S tells TensorBoard's reader that the run restarted there: it
// drops the events of step S and later that earlier files hold (a resumed run's metrics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace ringtrain {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it; `crc` continues
// an earlier call's result. crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// TFRecord's masking of a stored CRC: rotate right by 15 bits, add 0xa282ead8.
uint32_t maskedCrc32c(const void* data, size_t size);

// The encoded Event of one scalar summary per field ("<prefix>/<key>") at `step`.
std::string scalarsEvent(double wallTime, int64_t step, const std::string& prefix,
                         const std::vector<std::pair<std::string, double>>& fields);

// Appends Events to one event file in a directory that TensorBoard reads (`tensorboard
// --logdir DIR`). Each record is flushed as written, so a killed run keeps what it logged.
class TensorBoardWriter {
 public:
  // Creates DIR/events.out.tfevents.<seconds>.<host>.<pid>.ringtrain and writes the
  // file_version event TensorBoard expects first. Throws Error when it cannot.
  explicit TensorBoardWriter(const std::string& dir);
  // A metrics.jsonl record: its "step" field is the step, every other field a scalar
  // "<kind>/<field>".
  void record(const std::string& kind, const std::vector<std::pair<std::string, double>>& fields);
  // The run continues after an earlier attempt: a SessionLog START at `step`, from which
  // on TensorBoard drops what earlier files logged.
  void restartAt(int64_t step);
  const std::string& path() const { return path_; }

 private:
  void writeRecord(const std::string& event);

  std::string path_;
  std::ofstream out_;
};

}  // namespace ringtrain
