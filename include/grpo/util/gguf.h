#pragma once
// Reader for GGUF files (llama.cpp's single-file model format, versions 2 and 3; spec:
// https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). The file is memory-mapped; metadata
// and tensor infos are parsed eagerly and validated (every offset and size is checked against the
// file length), tensor bytes are read lazily through the mapping and dequantised on request.
//
// Typical use (e.g. importing weights into a model):
//
//   grpo::gguf::File f("model.gguf");
//   std::string arch = f.get_string("general.architecture");
//   const auto& t = f.tensor("blk.0.attn_q.weight");
//   std::vector<int64_t> shape = t.shape();          // PyTorch order, e.g. {out, in}
//   std::vector<float> w = f.dequantize(t);          // row-major in `shape`, float32
//
// Dimension order: GGUF stores ggml's ne[] with ne[0] the fastest-varying (innermost) axis, so a
// ggml tensor with dims {576, 1536} is a row-major PyTorch tensor of shape {1536, 576}. TensorInfo
// keeps the raw `dims` and offers `shape()` (reversed, PyTorch order).
//
// No LibTorch here (util layer): dequantisation produces plain float32 buffers.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace grpo::gguf {

/// GGUF metadata value types (gguf.md, "gguf_metadata_value_type"); numbering is the file's.
enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

/// "UINT32", "STRING", ... for messages.
std::string value_type_name(ValueType t);

/// ggml tensor types (ggml.h, enum ggml_type); numbering is the file's. Only some can be
/// dequantised (see can_dequantize()); the others are still parsed so that their byte sizes are
/// validated and a clear error names them when their values are requested.
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

/// "Q4_1", "F32", ...; "type#N" for a number ggml does not define.
std::string tensor_type_name(TensorType t);

/// Elements per quantisation block (1 for plain types, 32 for Q4_0/Q4_1/Q8_0, 256 for k-quants).
/// Throws grpo::InputError for an unknown type number.
size_t block_elements(TensorType t);

/// Bytes per block (e.g. Q4_1: 20 = fp16 d + fp16 m + 16 bytes of nibbles). Throws
/// grpo::InputError for an unknown type number.
size_t block_bytes(TensorType t);

/// True for the types dequantize_row() implements: F32, F16, BF16, F64, I8, I16, I32, Q8_0,
/// Q4_0, Q4_1.
bool can_dequantize(TensorType t);

/// Dequantises `n` elements of type `t` from `src` (n / block_elements(t) whole blocks) into
/// `dst` (float32). Block layouts and formulas follow ggml-quants.c (dequantize_row_*):
///   Q8_0: fp16 d, int8 q[32];            x[i] = q[i] * d
///   Q4_0: fp16 d, uint8 qs[16];          x[j] = (lo(qs[j]) - 8) * d, x[j+16] = (hi(qs[j]) - 8) * d
///   Q4_1: fp16 d, fp16 m, uint8 qs[16];  x[j] = lo(qs[j]) * d + m,   x[j+16] = hi(qs[j]) * d + m
/// (low nibbles are elements 0..15 of a block, high nibbles 16..31). Throws grpo::InputError when
/// `t` is not supported or `n` is not a multiple of the block size.
void dequantize_row(TensorType t, const void* src, float* dst, size_t n);

/// IEEE half -> float (exact, including subnormals, inf and NaN).
float fp16_to_float(uint16_t h);
/// bfloat16 -> float (exact).
float bf16_to_float(uint16_t h);

/// One metadata value. Scalars live in the typed members; arrays in `array` (elements of
/// `elem_type`; GGUF allows arrays of arrays). The as_* accessors convert between numeric types
/// when the value fits and throw grpo::InputError naming `key` otherwise.
struct Value {
  ValueType type = ValueType::UINT8;
  ValueType elem_type = ValueType::UINT8;  // ARRAY only
  uint64_t u = 0;                          // UINT*, BOOL (0/1)
  int64_t i = 0;                           // INT*
  double f = 0.0;                          // FLOAT32/FLOAT64
  std::string s;                           // STRING
  std::vector<Value> array;                // ARRAY

  bool is_integer() const;
  int64_t as_int(const std::string& key) const;
  uint64_t as_uint(const std::string& key) const;
  double as_double(const std::string& key) const;
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
  std::vector<std::string> as_strings(const std::string& key) const;  // ARRAY of STRING
  std::vector<int64_t> as_ints(const std::string& key) const;         // ARRAY of any integer type
  std::vector<double> as_doubles(const std::string& key) const;       // ARRAY of any numeric type
  /// Short human-readable rendering (arrays abbreviated) for `grpo` diagnostics.
  std::string to_string(size_t max_items = 8) const;
};

/// One tensor's header entry.
struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the innermost (contiguous) axis
  TensorType type = TensorType::F32;
  uint64_t offset = 0;         // bytes from the start of the data section (a multiple of alignment)
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;

  /// PyTorch (row-major) shape: dims reversed.
  std::vector<int64_t> shape() const;
};

/// A memory-mapped GGUF file. Not copyable; movable. Every error about the file is a
/// grpo::InputError whose message starts with the file path and names the key or tensor.
class File {
 public:
  /// Maps and parses `path`. Throws grpo::InputError when the file is missing, is not GGUF
  /// (bad magic, or a big-endian file), has an unsupported version (only 2 and 3), or is
  /// truncated/malformed (any string, array, tensor info or tensor data running past the end,
  /// more than 4 dims, a dimension of 0 or an element count that overflows, a row length that is
  /// not a multiple of the type's block size, a misaligned tensor offset, a duplicate key/tensor).
  explicit File(const std::string& path);
  ~File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const;
  uint32_t version() const;
  /// general.alignment, or 32 when absent.
  uint64_t alignment() const;
  /// Byte offset of the data section in the file.
  uint64_t data_offset() const;

  /// Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const;
  bool has(const std::string& key) const;
  /// nullptr when absent.
  const Value* find(const std::string& key) const;
  /// Throws grpo::InputError "<path>: metadata key '<key>' is missing" when absent.
  const Value& get(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;

  /// Tensor infos in file order.
  const std::vector<TensorInfo>& tensors() const;
  /// nullptr when absent.
  const TensorInfo* find_tensor(const std::string& name) const;
  /// Throws grpo::InputError "<path>: no tensor named '<name>'" when absent.
  const TensorInfo& tensor(const std::string& name) const;

  /// The tensor's raw bytes inside the mapping (valid while this File lives).
  std::span<const uint8_t> raw(const TensorInfo& t) const;
  /// Dequantised values, row-major in t.shape(), float32. Throws grpo::InputError naming the file,
  /// the tensor and its type when the type cannot be dequantised.
  std::vector<float> dequantize(const TensorInfo& t) const;
  /// Same into a caller buffer of t.n_elements floats (e.g. a tensor's data_ptr<float>()).
  void dequantize_into(const TensorInfo& t, float* dst) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::gguf
