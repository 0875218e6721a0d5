#include "grpo/util/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "grpo/util/error.h"

namespace grpo::gguf {
namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

struct TypeTraits {
  TensorType type;
  const char* name;
  size_t block_elems;
  size_t block_bytes;
};

// Sizes from ggml.c's type_traits (cross-checked against gguf-py's GGML_QUANT_SIZES).
constexpr TypeTraits kTypes[] = {
    {TensorType::F32, "F32", 1, 4},         {TensorType::F16, "F16", 1, 2},
    {TensorType::Q4_0, "Q4_0", 32, 18},     {TensorType::Q4_1, "Q4_1", 32, 20},
    {TensorType::Q5_0, "Q5_0", 32, 22},     {TensorType::Q5_1, "Q5_1", 32, 24},
    {TensorType::Q8_0, "Q8_0", 32, 34},     {TensorType::Q8_1, "Q8_1", 32, 40},
    {TensorType::Q2_K, "Q2_K", 256, 84},    {TensorType::Q3_K, "Q3_K", 256, 110},
    {TensorType::Q4_K, "Q4_K", 256, 144},   {TensorType::Q5_K, "Q5_K", 256, 176},
    {TensorType::Q6_K, "Q6_K", 256, 210},   {TensorType::Q8_K, "Q8_K", 256, 292},
    {TensorType::IQ2_XXS, "IQ2_XXS", 256, 66}, {TensorType::IQ2_XS, "IQ2_XS", 256, 74},
    {TensorType::IQ3_XXS, "IQ3_XXS", 256, 98}, {TensorType::IQ1_S, "IQ1_S", 256, 50},
    {TensorType::IQ4_NL, "IQ4_NL", 32, 18}, {TensorType::IQ3_S, "IQ3_S", 256, 110},
    {TensorType::IQ2_S, "IQ2_S", 256, 82},  {TensorType::IQ4_XS, "IQ4_XS", 256, 136},
    {TensorType::I8, "I8", 1, 1},           {TensorType::I16, "I16", 1, 2},
    {TensorType::I32, "I32", 1, 4},         {TensorType::I64, "I64", 1, 8},
    {TensorType::F64, "F64", 1, 8},         {TensorType::IQ1_M, "IQ1_M", 256, 56},
    {TensorType::BF16, "BF16", 1, 2},       {TensorType::TQ1_0, "TQ1_0", 256, 54},
    {TensorType::TQ2_0, "TQ2_0", 256, 66},  {TensorType::MXFP4, "MXFP4", 32, 17},
};

const TypeTraits* traits(TensorType t) {
  for (const auto& tt : kTypes)
    if (tt.type == t) return &tt;
  return nullptr;
}

const TypeTraits& traits_or_throw(TensorType t) {
  const auto* tt = traits(t);
  if (!tt) throw InputError(str("unknown ggml tensor type ", static_cast<uint32_t>(t)));
  return *tt;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Little-endian cursor over the mapping; every read is bounds-checked so a truncated file throws
// with what was being read rather than reading past the mapping.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), p_(data), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw InputError(str(path_, ": file is truncated: ", what, " needs ", n, " bytes at offset ", pos_, " but only ",
                           remaining(), " remain (file is ", size_, " bytes)"));
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v = load<T>(p_ + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    uint64_t n = read<uint64_t>(what + " (string length)");
    need(n, what + " (string of " + std::to_string(n) + " bytes)");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

// Smallest encoded size of one element, to reject absurd array lengths before allocating.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::STRING: case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::ARRAY: return 12;
  }
  return 1;
}

Value read_value(Cursor& c, ValueType t, const std::string& what, int depth) {
  Value v;
  v.type = t;
  switch (t) {
    case ValueType::UINT8: v.u = c.read<uint8_t>(what); break;
    case ValueType::INT8: v.i = c.read<int8_t>(what); break;
    case ValueType::UINT16: v.u = c.read<uint16_t>(what); break;
    case ValueType::INT16: v.i = c.read<int16_t>(what); break;
    case ValueType::UINT32: v.u = c.read<uint32_t>(what); break;
    case ValueType::INT32: v.i = c.read<int32_t>(what); break;
    case ValueType::UINT64: v.u = c.read<uint64_t>(what); break;
    case ValueType::INT64: v.i = c.read<int64_t>(what); break;
    case ValueType::FLOAT32: v.f = c.read<float>(what); break;
    case ValueType::FLOAT64: v.f = c.read<double>(what); break;
    case ValueType::BOOL: {
      uint8_t b = c.read<uint8_t>(what);
      if (b > 1) throw InputError(str(what, ": BOOL value is ", int(b), ", expected 0 or 1"));
      v.u = b;
      break;
    }
    case ValueType::STRING: v.s = c.read_string(what); break;
    case ValueType::ARRAY: {
      if (depth > 8) throw InputError(str(what, ": arrays nested more than 8 deep"));
      uint32_t et = c.read<uint32_t>(what + " (array element type)");
      if (!valid_value_type(et)) throw InputError(str(what, ": unknown array element type ", et));
      v.elem_type = static_cast<ValueType>(et);
      uint64_t n = c.read<uint64_t>(what + " (array length)");
      if (n > c.remaining() / min_encoded_size(v.elem_type))
        throw InputError(str(what, ": array of ", n, " ", value_type_name(v.elem_type),
                             " elements cannot fit in the remaining ", c.remaining(), " bytes (file is truncated or corrupt)"));
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, v.elem_type, what, depth + 1));
      break;
    }
  }
  return v;
}

bool is_int_type(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64: return true;
    default: return false;
  }
}
bool is_signed(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}

}  // namespace

std::string value_type_name(ValueType t) {
  static const char* names[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32", "FLOAT32",
                                "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
  auto k = static_cast<uint32_t>(t);
  return k < std::size(names) ? names[k] : "type#" + std::to_string(k);
}

std::string tensor_type_name(TensorType t) {
  const auto* tt = traits(t);
  return tt ? tt->name : "type#" + std::to_string(static_cast<uint32_t>(t));
}

size_t block_elements(TensorType t) { return traits_or_throw(t).block_elems; }
size_t block_bytes(TensorType t) { return traits_or_throw(t).block_bytes; }

bool can_dequantize(TensorType t) {
  switch (t) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16: case TensorType::F64:
    case TensorType::I8: case TensorType::I16: case TensorType::I32:
    case TensorType::Q8_0: case TensorType::Q4_0: case TensorType::Q4_1: return true;
    default: return false;
  }
}

float fp16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24, exact in float
      float f = std::ldexp(static_cast<float>(mant), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

void dequantize_row(TensorType t, const void* src_v, float* dst, size_t n) {
  const auto* src = static_cast<const uint8_t*>(src_v);
  const auto& tt = traits_or_throw(t);
  if (n % tt.block_elems != 0)
    throw InputError(str("dequantize ", tt.name, ": ", n, " elements is not a multiple of the block size ", tt.block_elems));
  const size_t nb = n / tt.block_elems;
  switch (t) {
    case TensorType::F32: std::memcpy(dst, src, n * 4); return;
    case TensorType::F16:
      for (size_t k = 0; k < n; ++k) dst[k] = fp16_to_float(load<uint16_t>(src + 2 * k));
      return;
    case TensorType::BF16:
      for (size_t k = 0; k < n; ++k) dst[k] = bf16_to_float(load<uint16_t>(src + 2 * k));
      return;
    case TensorType::F64:
      for (size_t k = 0; k < n; ++k) dst[k] = static_cast<float>(load<double>(src + 8 * k));
      return;
    case TensorType::I8:
      for (size_t k = 0; k < n; ++k) dst[k] = static_cast<float>(load<int8_t>(src + k));
      return;
    case TensorType::I16:
      for (size_t k = 0; k < n; ++k) dst[k] = static_cast<float>(load<int16_t>(src + 2 * k));
      return;
    case TensorType::I32:
      for (size_t k = 0; k < n; ++k) dst[k] = static_cast<float>(load<int32_t>(src + 4 * k));
      return;
    case TensorType::Q8_0:
      for (size_t b = 0; b < nb; ++b, src += 34, dst += 32) {
        const float d = fp16_to_float(load<uint16_t>(src));
        for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(static_cast<int8_t>(src[2 + j])) * d;
      }
      return;
    case TensorType::Q4_0:
      for (size_t b = 0; b < nb; ++b, src += 18, dst += 32) {
        const float d = fp16_to_float(load<uint16_t>(src));
        const uint8_t* qs = src + 2;
        for (int j = 0; j < 16; ++j) {
          dst[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
          dst[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
        }
      }
      return;
    case TensorType::Q4_1:
      for (size_t b = 0; b < nb; ++b, src += 20, dst += 32) {
        const float d = fp16_to_float(load<uint16_t>(src));
        const float m = fp16_to_float(load<uint16_t>(src + 2));
        const uint8_t* qs = src + 4;
        for (int j = 0; j < 16; ++j) {
          dst[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
          dst[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
        }
      }
      return;
    default:
      throw InputError(str("dequantizing ggml type ", tt.name,
                           " is not supported (supported: F32, F16, BF16, F64, I8, I16, I32, Q8_0, Q4_0, Q4_1)"));
  }
}

// ---- Value ----

bool Value::is_integer() const { return is_int_type(type) || type == ValueType::BOOL; }

int64_t Value::as_int(const std::string& key) const {
  if (is_signed(type)) return i;
  if (is_int_type(type) || type == ValueType::BOOL) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw InputError(str("metadata key '", key, "': value ", u, " does not fit in int64"));
    return static_cast<int64_t>(u);
  }
  throw InputError(str("metadata key '", key, "' is ", value_type_name(type), ", expected an integer"));
}

uint64_t Value::as_uint(const std::string& key) const {
  if (is_signed(type)) {
    if (i < 0) throw InputError(str("metadata key '", key, "' is negative (", i, "), expected an unsigned integer"));
    return static_cast<uint64_t>(i);
  }
  if (is_int_type(type) || type == ValueType::BOOL) return u;
  throw InputError(str("metadata key '", key, "' is ", value_type_name(type), ", expected an unsigned integer"));
}

double Value::as_double(const std::string& key) const {
  if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64) return f;
  if (is_signed(type)) return static_cast<double>(i);
  if (is_int_type(type)) return static_cast<double>(u);
  throw InputError(str("metadata key '", key, "' is ", value_type_name(type), ", expected a number"));
}

bool Value::as_bool(const std::string& key) const {
  if (type == ValueType::BOOL) return u != 0;
  throw InputError(str("metadata key '", key, "' is ", value_type_name(type), ", expected BOOL"));
}

const std::string& Value::as_string(const std::string& key) const {
  if (type == ValueType::STRING) return s;
  throw InputError(str("metadata key '", key, "' is ", value_type_name(type), ", expected STRING"));
}

std::vector<std::string> Value::as_strings(const std::string& key) const {
  if (type != ValueType::ARRAY || elem_type != ValueType::STRING)
    throw InputError(str("metadata key '", key, "' is ", value_type_name(type),
                         type == ValueType::ARRAY ? " of " + value_type_name(elem_type) : std::string(),
                         ", expected ARRAY of STRING"));
  std::vector<std::string> out;
  out.reserve(array.size());
  for (const auto& e : array) out.push_back(e.s);
  return out;
}

std::vector<int64_t> Value::as_ints(const std::string& key) const {
  if (type != ValueType::ARRAY || !(is_int_type(elem_type) || elem_type == ValueType::BOOL))
    throw InputError(str("metadata key '", key, "' is ", value_type_name(type),
                         type == ValueType::ARRAY ? " of " + value_type_name(elem_type) : std::string(),
                         ", expected ARRAY of integers"));
  std::vector<int64_t> out;
  out.reserve(array.size());
  for (const auto& e : array) out.push_back(e.as_int(key));
  return out;
}

std::vector<double> Value::as_doubles(const std::string& key) const {
  if (type != ValueType::ARRAY || elem_type == ValueType::STRING || elem_type == ValueType::ARRAY ||
      elem_type == ValueType::BOOL)
    throw InputError(str("metadata key '", key, "' is ", value_type_name(type),
                         type == ValueType::ARRAY ? " of " + value_type_name(elem_type) : std::string(),
                         ", expected ARRAY of numbers"));
  std::vector<double> out;
  out.reserve(array.size());
  for (const auto& e : array) out.push_back(e.as_double(key));
  return out;
}

std::string Value::to_string(size_t max_items) const {
  switch (type) {
    case ValueType::STRING: {
      std::string t = s.size() > 80 ? s.substr(0, 77) + "..." : s;
      for (auto& ch : t)
        if (ch == '\n') ch = ' ';
      return "\"" + t + "\"";
    }
    case ValueType::BOOL: return u ? "true" : "false";
    case ValueType::FLOAT32: case ValueType::FLOAT64: return str(f);
    case ValueType::ARRAY: {
      std::string out = "[";
      for (size_t k = 0; k < array.size() && k < max_items; ++k) out += (k ? ", " : "") + array[k].to_string(max_items);
      if (array.size() > max_items) out += str(", ... (", array.size(), " items)");
      return out + "]";
    }
    default: return is_signed(type) ? std::to_string(i) : std::to_string(u);
  }
}

std::vector<int64_t> TensorInfo::shape() const {
  std::vector<int64_t> out(dims.rbegin(), dims.rend());
  return out;
}

// ---- File ----

struct File::Impl {
  std::string path;
  int fd = -1;
  const uint8_t* map = nullptr;
  uint64_t size = 0;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, Value>> metadata;
  std::unordered_map<std::string, size_t> meta_index;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, size_t> tensor_index;

  ~Impl() {
    if (map && size) munmap(const_cast<uint8_t*>(map), size);
    if (fd >= 0) close(fd);
  }
  void parse();
};

void File::Impl::parse() {
  Cursor c(path, map, size);
  if (size < 4 || std::memcmp(map, "GGUF", 4) != 0)
    throw InputError(str(path, ": not a GGUF file (the first 4 bytes are not \"GGUF\")"));
  c.read<uint32_t>("magic");
  version = c.read<uint32_t>("version");
  if (version != 2 && version != 3) {
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped == 2 || swapped == 3)
      throw InputError(str(path, ": big-endian GGUF files are not supported"));
    throw InputError(str(path, ": unsupported GGUF version ", version, " (supported: 2, 3)"));
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8+4+8+4+8.
  if (n_kv > c.remaining() / 13)
    throw InputError(str(path, ": header declares ", n_kv, " metadata entries, more than the file can hold (truncated or corrupt)"));
  if (n_tensors > c.remaining() / 32)
    throw InputError(str(path, ": header declares ", n_tensors, " tensors, more than the file can hold (truncated or corrupt)"));

  metadata.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string(str("metadata entry #", k, " key"));
    std::string what = str(path, ": metadata key '", key, "'");
    uint32_t t = c.read<uint32_t>(what + " type");
    if (!valid_value_type(t)) throw InputError(str(what, ": unknown value type ", t));
    Value v = read_value(c, static_cast<ValueType>(t), what, 0);
    if (!meta_index.emplace(key, metadata.size()).second) throw InputError(str(what, " appears twice"));
    metadata.emplace_back(std::move(key), std::move(v));
  }

  if (auto it = meta_index.find("general.alignment"); it != meta_index.end()) {
    const Value& a = metadata[it->second].second;
    if (!a.is_integer()) throw InputError(str(path, ": general.alignment is ", value_type_name(a.type), ", expected UINT32"));
    alignment = a.as_uint("general.alignment");
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      throw InputError(str(path, ": general.alignment is ", alignment, ", expected a power of two"));
  }

  tensors.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    ti.name = c.read_string(str(path, ": tensor info #", k, " name"));
    std::string what = str(path, ": tensor '", ti.name, "'");
    uint32_t nd = c.read<uint32_t>(what + " dimension count");
    if (nd == 0 || nd > kMaxDims) throw InputError(str(what, " has ", nd, " dimensions, expected 1..", kMaxDims));
    ti.n_elements = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t dim = c.read<uint64_t>(what + " dims");
      if (dim == 0) throw InputError(str(what, " has a dimension of size 0"));
      if (ti.n_elements > std::numeric_limits<int64_t>::max() / dim)
        throw InputError(str(what, ": element count overflows"));
      ti.n_elements *= dim;
      ti.dims.push_back(dim);
    }
    uint32_t tt = c.read<uint32_t>(what + " type");
    ti.type = static_cast<TensorType>(tt);
    const TypeTraits* tr = traits(ti.type);
    if (!tr) throw InputError(str(what, " has unknown ggml type ", tt));
    if (ti.dims[0] % tr->block_elems != 0)
      throw InputError(str(what, ": row length ", ti.dims[0], " is not a multiple of the ", tr->name, " block size ",
                           tr->block_elems));
    ti.n_bytes = ti.n_elements / tr->block_elems * tr->block_bytes;
    ti.offset = c.read<uint64_t>(what + " offset");
    if (ti.offset % alignment != 0)
      throw InputError(str(what, ": data offset ", ti.offset, " is not a multiple of the alignment ", alignment));
    if (!tensor_index.emplace(ti.name, tensors.size()).second) throw InputError(str(what, " appears twice"));
    tensors.push_back(std::move(ti));
  }

  data_offset = (c.pos() + alignment - 1) / alignment * alignment;
  if (n_tensors > 0 && data_offset > size)
    throw InputError(str(path, ": file is truncated: the data section would start at byte ", data_offset,
                         " but the file is ", size, " bytes"));
  for (const auto& ti : tensors) {
    uint64_t avail = size > data_offset ? size - data_offset : 0;
    if (ti.offset > avail || ti.n_bytes > avail - ti.offset)
      throw InputError(str(path, ": file is truncated: tensor '", ti.name, "' (", tensor_type_name(ti.type), ", ",
                           ti.n_bytes, " bytes at data offset ", ti.offset, ") runs past the end of the file (",
                           size, " bytes, data section starts at ", data_offset, ")"));
  }
}

File::File(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (impl_->fd < 0) throw InputError(str(path, ": cannot open GGUF file: ", std::strerror(errno)));
  struct stat st {};
  if (fstat(impl_->fd, &st) != 0) throw InputError(str(path, ": cannot stat: ", std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) throw InputError(str(path, ": is a directory, expected a .gguf file"));
  impl_->size = static_cast<uint64_t>(st.st_size);
  if (impl_->size == 0) throw InputError(str(path, ": not a GGUF file (it is empty)"));
  void* m = mmap(nullptr, impl_->size, PROT_READ, MAP_PRIVATE, impl_->fd, 0);
  if (m == MAP_FAILED) throw InputError(str(path, ": cannot mmap: ", std::strerror(errno)));
  impl_->map = static_cast<const uint8_t*>(m);
  impl_->parse();
}

File::~File() = default;
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;

const std::string& File::path() const { return impl_->path; }
uint32_t File::version() const { return impl_->version; }
uint64_t File::alignment() const { return impl_->alignment; }
uint64_t File::data_offset() const { return impl_->data_offset; }
const std::vector<std::pair<std::string, Value>>& File::metadata() const { return impl_->metadata; }
bool File::has(const std::string& key) const { return impl_->meta_index.count(key) != 0; }

const Value* File::find(const std::string& key) const {
  auto it = impl_->meta_index.find(key);
  return it == impl_->meta_index.end() ? nullptr : &impl_->metadata[it->second].second;
}

const Value& File::get(const std::string& key) const {
  const Value* v = find(key);
  if (!v) throw InputError(str(impl_->path, ": metadata key '", key, "' is missing"));
  return *v;
}

// Accessor errors from Value name only the key; prefix the file here.
template <class F>
static auto with_path(const std::string& path, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
}

std::string File::get_string(const std::string& key) const {
  return with_path(impl_->path, [&] { return get(key).as_string(key); });
}
int64_t File::get_int(const std::string& key) const {
  const Value& v = get(key);
  return with_path(impl_->path, [&] { return v.as_int(key); });
}
double File::get_double(const std::string& key) const {
  const Value& v = get(key);
  return with_path(impl_->path, [&] { return v.as_double(key); });
}
bool File::get_bool(const std::string& key) const {
  const Value& v = get(key);
  return with_path(impl_->path, [&] { return v.as_bool(key); });
}
std::string File::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
int64_t File::get_int(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }
double File::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}
bool File::get_bool(const std::string& key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

const std::vector<TensorInfo>& File::tensors() const { return impl_->tensors; }

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw InputError(str(impl_->path, ": no tensor named '", name, "'"));
  return *t;
}

std::span<const uint8_t> File::raw(const TensorInfo& t) const {
  return {impl_->map + impl_->data_offset + t.offset, static_cast<size_t>(t.n_bytes)};
}

std::vector<float> File::dequantize(const TensorInfo& t) const {
  std::vector<float> out(t.n_elements);
  dequantize_into(t, out.data());
  return out;
}

void File::dequantize_into(const TensorInfo& t, float* dst) const {
  if (!can_dequantize(t.type))
    throw InputError(str(impl_->path, ": tensor '", t.name, "' has type ", tensor_type_name(t.type),
                         ", which grpo cannot dequantize (supported: F32, F16, BF16, F64, I8, I16, I32, Q8_0, Q4_0, "
                         "Q4_1); re-quantize the model to one of these, e.g. with llama-quantize"));
  dequantize_row(t.type, raw(t).data(), dst, t.n_elements);
}

}  // namespace grpo::gguf
