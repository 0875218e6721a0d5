// GGUF reader against llama.cpp's gguf-py: tests/util/data/* are written by
// scripts/make_gguf_refs.py (GGUFWriter for the file, gguf.quants.dequantize for the values).
#include "grpo/util/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace {

using grpo::gguf::File;
using grpo::gguf::TensorType;
using grpo::gguf::ValueType;
namespace stdfs = std::filesystem;

const std::string kDataDir = std::string(GRPO_SOURCE_DIR) + "/tests/util/data/";

nlohmann::json load_json(const std::string& path) { return nlohmann::json::parse(grpo::fs::read_file(path)); }

std::string temp_path(const std::string& name) {
  return (stdfs::temp_directory_path() / ("grpo_gguf_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects File(path) to throw grpo::InputError whose message contains every one of `parts`.
void expect_input_error(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    File f(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const grpo::InputError& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

// Little-endian byte builder for hand-made malformed files.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& put_str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b += "GGUF";
    return put(version).put(n_tensors).put(n_kv);
  }
};

TEST(GgufHalf, KnownValues) {
  // Hand-checked IEEE binary16 encodings.
  EXPECT_EQ(grpo::gguf::fp16_to_float(0x3c00), 1.0f);
  EXPECT_EQ(grpo::gguf::fp16_to_float(0xc000), -2.0f);
  EXPECT_EQ(grpo::gguf::fp16_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(grpo::gguf::fp16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(grpo::gguf::fp16_to_float(0x8400), -std::ldexp(1.0f, -14));
  EXPECT_TRUE(std::isinf(grpo::gguf::fp16_to_float(0x7c00)));
  EXPECT_TRUE(std::isnan(grpo::gguf::fp16_to_float(0x7e00)));
  EXPECT_TRUE(std::signbit(grpo::gguf::fp16_to_float(0x8000)));
  EXPECT_EQ(grpo::gguf::bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(grpo::gguf::bf16_to_float(0xc0a0), -5.0f);
}

TEST(GgufSmall, MetadataOfEveryType) {
  auto ref = load_json(kDataDir + "gguf_small.json");
  File f(kDataDir + "gguf_small.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  const auto& m = ref["metadata"];
  EXPECT_EQ(f.get("test.u8").type, ValueType::UINT8);
  EXPECT_EQ(f.get_int("test.u8"), m["test.u8"].get<int64_t>());
  EXPECT_EQ(f.get("test.i8").type, ValueType::INT8);
  EXPECT_EQ(f.get_int("test.i8"), m["test.i8"].get<int64_t>());
  EXPECT_EQ(f.get_int("test.u16"), m["test.u16"].get<int64_t>());
  EXPECT_EQ(f.get_int("test.i16"), m["test.i16"].get<int64_t>());
  EXPECT_EQ(f.get_int("test.u32"), m["test.u32"].get<int64_t>());
  EXPECT_EQ(f.get_int("test.i32"), m["test.i32"].get<int64_t>());
  EXPECT_EQ(f.get("test.f32").type, ValueType::FLOAT32);
  EXPECT_EQ(f.get_double("test.f32"), m["test.f32"].get<double>());
  EXPECT_EQ(f.get("test.u64").type, ValueType::UINT64);
  EXPECT_EQ(std::to_string(f.get("test.u64").as_uint("test.u64")), m["test.u64"].get<std::string>());
  EXPECT_THROW(f.get_int("test.u64"), grpo::InputError);  // 2^63 + 5 does not fit in int64
  EXPECT_EQ(f.get_int("test.i64"), m["test.i64"].get<int64_t>());
  EXPECT_EQ(f.get("test.f64").type, ValueType::FLOAT64);
  EXPECT_EQ(f.get_double("test.f64"), m["test.f64"].get<double>());
  EXPECT_EQ(f.get_bool("test.bool"), m["test.bool"].get<bool>());
  EXPECT_EQ(f.get_string("test.str"), m["test.str"].get<std::string>());
  EXPECT_EQ(f.get_string("general.architecture"), m["general.architecture"].get<std::string>());
  EXPECT_EQ(f.get("test.arr_str").as_strings("test.arr_str"), m["test.arr_str"].get<std::vector<std::string>>());
  EXPECT_EQ(f.get("test.arr_i32").as_ints("test.arr_i32"), m["test.arr_i32"].get<std::vector<int64_t>>());
  EXPECT_EQ(f.get("test.arr_f32").as_doubles("test.arr_f32"), m["test.arr_f32"].get<std::vector<double>>());
  const auto& nested = f.get("test.arr_nested");
  ASSERT_EQ(nested.elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested.array.size(), 2u);
  EXPECT_EQ(nested.array[0].as_ints("x"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested.array[1].as_ints("x"), (std::vector<int64_t>{3}));

  // Fallbacks and errors name the file and key.
  EXPECT_EQ(f.get_int("no.such.key", 7), 7);
  EXPECT_EQ(f.get_string("no.such.key", "d"), "d");
  try {
    f.get_string("no.such.key");
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("gguf_small.gguf: metadata key 'no.such.key' is missing"), std::string::npos);
  }
  try {
    f.get_string("test.u8");
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'test.u8' is UINT8, expected STRING"), std::string::npos) << e.what();
  }
}

TEST(GgufSmall, DequantiseMatchesGgufPy) {
  auto ref = load_json(kDataDir + "gguf_small.json");
  File f(kDataDir + "gguf_small.gguf");
  int checked = 0;
  for (const auto& [name, r] : ref["tensors"].items()) {
    SCOPED_TRACE(name);
    const auto& t = f.tensor(name);
    EXPECT_EQ(grpo::gguf::tensor_type_name(t.type), r["type"].get<std::string>());
    EXPECT_EQ(t.dims, r["dims"].get<std::vector<uint64_t>>());
    EXPECT_EQ(t.offset % 64, 0u);
    if (t.type == TensorType::Q5_0) continue;  // the error-path tensor, below
    auto want = r["values"].get<std::vector<double>>();
    auto got = f.dequantize(t);
    ASSERT_EQ(got.size(), want.size());
    // Same float32 formula as gguf-py (d * q + m, in float32): equal up to 4 ulps, which only an
    // FMA contraction by the compiler could introduce.
    for (size_t k = 0; k < got.size(); ++k) EXPECT_FLOAT_EQ(got[k], static_cast<float>(want[k])) << "element " << k;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  // shape() is PyTorch order: the numpy shape the script used.
  EXPECT_EQ(f.tensor("t.q4_0").shape(), (std::vector<int64_t>{2, 2, 32}));
  EXPECT_EQ(f.tensor("t.q4_1").shape(), (std::vector<int64_t>{4, 96}));
}

TEST(GgufSmall, UnsupportedTypeNamesFileTensorAndType) {
  File f(kDataDir + "gguf_small.gguf");
  try {
    f.dequantize(f.tensor("t.q5_0"));
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("gguf_small.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'t.q5_0'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Q5_0"), std::string::npos) << msg;
  }
  EXPECT_THROW(f.tensor("nope"), grpo::InputError);
}

TEST(GgufSmall, EveryTruncationIsAnInputError) {
  const std::string full = grpo::fs::read_file(kDataDir + "gguf_small.gguf");
  uint64_t needed = 0;  // bytes the file needs: end of the last tensor's data
  {
    File f(kDataDir + "gguf_small.gguf");
    for (const auto& t : f.tensors()) needed = std::max(needed, f.data_offset() + t.offset + t.n_bytes);
  }
  ASSERT_LE(needed, full.size());
  const std::string p = temp_path("trunc.gguf");
  for (size_t len = 0; len < full.size(); ++len) {
    write_bytes(p, full.substr(0, len));
    if (len < needed) {
      EXPECT_THROW(File f(p), grpo::InputError) << "length " << len;
    } else {
      EXPECT_NO_THROW(File f(p)) << "length " << len;  // only trailing padding was cut
    }
  }
  write_bytes(p, full.substr(0, needed - 1));
  expect_input_error(p, {p, "truncated", "t.q5_0"});
  stdfs::remove(p);
}

TEST(GgufMalformed, ClearErrors) {
  const std::string p = temp_path("bad.gguf");
  expect_input_error(temp_path("missing.gguf"), {"missing.gguf", "cannot open"});
  write_bytes(p, "");
  expect_input_error(p, {p, "empty"});
  write_bytes(p, "GGML\x03\0\0\0");
  expect_input_error(p, {p, "not a GGUF file"});
  write_bytes(p, Bytes().header(1, 0, 0).b);
  expect_input_error(p, {p, "unsupported GGUF version 1"});
  write_bytes(p, Bytes().header(0x03000000, 0, 0).b);
  expect_input_error(p, {p, "big-endian"});
  write_bytes(p, Bytes().header(3, 0, 1).put_str("k").put<uint32_t>(99).b);
  expect_input_error(p, {p, "'k'", "unknown value type 99"});
  write_bytes(p, Bytes().header(3, 0, 1).put_str("k").put<uint32_t>(8).put<uint64_t>(1ull << 40).b);
  expect_input_error(p, {p, "'k'", "truncated"});
  // An array length no file could hold must fail before allocating.
  write_bytes(p, Bytes().header(3, 0, 1).put_str("arr").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1ull << 60).b);
  expect_input_error(p, {p, "'arr'", "cannot fit"});
  write_bytes(p, Bytes().header(3, 0, 1).put_str("b").put<uint32_t>(7).put<uint8_t>(2).b);
  expect_input_error(p, {p, "'b'", "BOOL"});
  write_bytes(p, Bytes().header(3, 0, 1).put_str("general.alignment").put<uint32_t>(4).put<uint32_t>(48).b);
  expect_input_error(p, {p, "general.alignment", "power of two"});
  write_bytes(p, Bytes().header(3, 0, 2).put_str("k").put<uint32_t>(4).put<uint32_t>(1).put_str("k").put<uint32_t>(4).put<uint32_t>(1).b);
  expect_input_error(p, {p, "'k'", "twice"});
  write_bytes(p, Bytes().header(3, 1000000, 0).b);
  expect_input_error(p, {p, "1000000 tensors"});

  auto tensor_file = [](uint32_t nd, std::vector<uint64_t> dims, uint32_t type, uint64_t off, size_t data) {
    Bytes b;
    b.header(3, 1, 0).put_str("w").put(nd);
    for (auto d : dims) b.put(d);
    b.put(type).put(off);
    while (b.b.size() % 32) b.b.push_back('\0');
    b.b.append(data, '\0');
    return b.b;
  };
  write_bytes(p, tensor_file(5, {1, 1, 1, 1, 1}, 0, 0, 4));
  expect_input_error(p, {p, "'w'", "5 dimensions"});
  write_bytes(p, tensor_file(2, {4, 0}, 0, 0, 4));
  expect_input_error(p, {p, "'w'", "size 0"});
  write_bytes(p, tensor_file(1, {4}, 77, 0, 16));
  expect_input_error(p, {p, "'w'", "unknown ggml type 77"});
  write_bytes(p, tensor_file(1, {40}, 3, 0, 40));  // Q4_1 needs rows of 32k elements
  expect_input_error(p, {p, "'w'", "not a multiple", "Q4_1"});
  write_bytes(p, tensor_file(1, {4}, 0, 8, 64));
  expect_input_error(p, {p, "'w'", "alignment"});
  write_bytes(p, tensor_file(1, {64}, 3, 0, 39));  // Q4_1: 2 blocks = 40 bytes
  expect_input_error(p, {p, "'w'", "Q4_1", "truncated"});
  write_bytes(p, tensor_file(1, {64}, 3, 0, 40));
  EXPECT_NO_THROW(File f(p));
  stdfs::remove(p);
}

TEST(GgufSmolLM2, DequantiseMatchesGgufPy) {
  const char* home = std::getenv("HOME");
  const char* data = std::getenv("GRPO_DATA_DIR");
  std::string path = (data ? std::string(data) : std::string(home ? home : "") + "/.cache/grpo/data") +
                     "/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!stdfs::exists(path)) GTEST_SKIP() << path << " not found; run scripts/fetch_assets.sh to fetch it";
  auto ref = load_json(kDataDir + "gguf_smollm2.json");
  File f(path);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.tensors().size(), ref["tensors"].size());
  std::vector<float> buf;
  for (const auto& [name, r] : ref["tensors"].items()) {
    SCOPED_TRACE(name);
    const auto& t = f.tensor(name);
    EXPECT_EQ(grpo::gguf::tensor_type_name(t.type), r["type"].get<std::string>());
    EXPECT_EQ(t.dims, r["dims"].get<std::vector<uint64_t>>());
    buf.resize(t.n_elements);
    f.dequantize_into(t, buf.data());
    double sum = 0, sumsq = 0;
    for (float x : buf) sum += x, sumsq += double(x) * x;
    // Sums of up to 28M float32 values in float64 by two different summation orders (numpy's
    // pairwise vs our sequential): agree to ~1e-12 relative; 1e-9 of the sum of |x|^2 is ample.
    double scale = std::sqrt(r["sumsq"].get<double>() * double(t.n_elements)) + 1e-30;
    EXPECT_NEAR(sum, r["sum"].get<double>(), 1e-9 * scale);
    EXPECT_NEAR(sumsq, r["sumsq"].get<double>(), 1e-9 * r["sumsq"].get<double>());
    auto idx = r["idx"].get<std::vector<size_t>>();
    auto vals = r["values"].get<std::vector<double>>();
    for (size_t k = 0; k < idx.size(); ++k) EXPECT_FLOAT_EQ(buf[idx[k]], static_cast<float>(vals[k]));
  }
}

}  // namespace
