#include "grpo/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "grpo/util/error.h"

namespace grpo::train {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/).
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, uint32_t field, uint32_t wire) { put_varint(out, (field << 3) | wire); }
template <class T>
void put_le(std::string& out, T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86/ARM are little-endian, as protobuf's fixed types are
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}
void put_bytes(std::string& out, uint32_t field, const std::string& s) {
  put_tag(out, field, 2);
  put_varint(out, s.size());
  out += s;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string encode_scalar_event(double wall_time, int64_t step, const std::map<std::string, double>& scalars) {
  std::string ev;
  put_tag(ev, 1, 1);  // wall_time: double, fixed64
  put_le(ev, wall_time);
  put_tag(ev, 2, 0);  // step: int64, varint (two's complement for negatives)
  put_varint(ev, static_cast<uint64_t>(step));
  std::string summary;
  for (const auto& [tag, v] : scalars) {
    std::string value;
    put_bytes(value, 1, tag);
    put_tag(value, 2, 5);  // simple_value: float, fixed32
    put_le(value, static_cast<float>(v));
    put_bytes(summary, 1, value);
  }
  put_bytes(ev, 5, summary);
  return ev;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GRPO_REQUIRE(!ec, "tensorboard: cannot create '", dir, "': ", ec.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ = (std::filesystem::path(dir) /
           grpo::str("events.out.tfevents.", static_cast<int64_t>(now_seconds()), ".", host, ".", ::getpid()))
              .string();
  f_ = std::fopen(path_.c_str(), "ab");
  GRPO_REQUIRE(f_, "tensorboard: cannot create '", path_, "': ", std::strerror(errno));
  std::string ev;
  put_tag(ev, 1, 1);
  put_le(ev, now_seconds());
  put_bytes(ev, 3, "brain.Event:2");
  write_record(ev);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  std::string len_bytes;
  put_le(len_bytes, len);
  rec += len_bytes;
  put_le(rec, masked_crc32c(len_bytes.data(), len_bytes.size()));
  rec += data;
  put_le(rec, masked_crc32c(data.data(), data.size()));
  GRPO_REQUIRE(std::fwrite(rec.data(), 1, rec.size(), f_) == rec.size(), "tensorboard: cannot write '", path_,
               "': ", std::strerror(errno));
}

void TensorBoardWriter::add_scalars(int64_t step, const std::map<std::string, double>& scalars) {
  write_record(encode_scalar_event(now_seconds(), step, scalars));
}

void TensorBoardWriter::flush() {
  GRPO_REQUIRE(std::fflush(f_) == 0, "tensorboard: cannot flush '", path_, "': ", std::strerror(errno));
}

}  // namespace grpo::train
