#pragma once
// TensorBoard event files written by us, without TensorFlow or protobuf. An event file is a
// sequence of TFRecords (tensorflow/core/lib/io/record_writer.cc):
//   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// with masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8, and each data is a serialized
// tensorflow.Event protobuf (tensorflow/core/util/event.proto), hand-encoded:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first record is the version event, file_version "brain.Event:2".
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace grpo::train {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes; crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t n);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
uint32_t masked_crc32c(const void* data, size_t n);

/// Protobuf bytes of an Event with wall_time, step and one simple_value per scalar (exposed for tests).
std::string encode_scalar_event(double wall_time, int64_t step, const std::map<std::string, double>& scalars);

/// Appends scalar events to <dir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.
class TensorBoardWriter {
 public:
  /// Creates `dir` and a new event file in it, writing the version event. Throws grpo::InputError
  /// when the directory or file cannot be created.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// One event holding every scalar (as float32 simple_value, TensorBoard's scalar type) at `step`;
  /// wall_time is now in seconds since the epoch. Non-finite values are written as they are
  /// (TensorBoard shows NaN/inf). Throws grpo::InputError on a write error.
  void add_scalars(int64_t step, const std::map<std::string, double>& scalars);
  /// Flushes to the OS (events are readable by TensorBoard after this).
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace grpo::train
