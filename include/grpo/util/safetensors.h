#pragma once
// Safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the raw little-endian tensor bytes. Reading memory-maps the file so a multi-GB checkpoint is
// never copied into a std::string; no torch here (util is a non-torch layer).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace grpo::safetensors {

/// One tensor entry of the header. `dtype` is the safetensors name ("F32", "BF16", "F16", ...).
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  size_t offset = 0;  // bytes from the start of the data section
  size_t nbytes = 0;
};

/// Bytes per element of a safetensors dtype name; 0 for names this reader does not know.
size_t dtype_size(const std::string& dtype);

/// A memory-mapped, validated safetensors file. Move-only; unmaps on destruction.
class File {
 public:
  /// Maps and validates `path`. Throws grpo::InputError naming the file and what is wrong when it
  /// is missing, shorter than its header says, has malformed JSON, an unknown dtype, offsets outside
  /// the data section, or a byte range that does not match dtype x shape.
  explicit File(const std::string& path);
  ~File();
  File(File&& other) noexcept;
  File& operator=(File&&) = delete;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// The entry called `name`, or nullptr.
  const TensorInfo* find(const std::string& name) const;
  /// Start of the entry's bytes inside the mapping (valid while this File lives).
  const void* data(const TensorInfo& t) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: the caller keeps `data` alive until write() returns.
struct WriteTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", "F16"
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

/// Writes a safetensors file at `path` durably (temp file, fsync, rename). Tensors are laid out
/// in the order given, each aligned to 8 bytes as the reference writer does. Throws
/// grpo::InputError when the file cannot be written or a tensor's byte count mismatches its shape.
void write(const std::string& path, const std::vector<WriteTensor>& tensors,
           const std::map<std::string, std::string>& metadata = {});

}  // namespace grpo::safetensors
