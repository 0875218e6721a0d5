#include "grpo/util/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::safetensors {

size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

File::File(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(str("cannot open safetensors file '", path, "': ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(str("safetensors file '", path, "' is not a regular file"));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw InputError(str("safetensors file '", path, "' is truncated: ", size_, " bytes, expected at least 8"));
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw InputError(str("cannot mmap safetensors file '", path, "': ", std::strerror(errno)));
  }
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    if (n > size_ - 8)
      throw InputError(str("safetensors file '", path, "' is truncated: header says ", n, " JSON bytes but only ",
                           size_ - 8, " follow"));
    data_start_ = 8 + n;
    const size_t data_size = size_ - data_start_;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + n));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(str("safetensors file '", path, "' has a malformed JSON header: ", e.what()));
    }
    if (!header.is_object()) throw InputError(str("safetensors file '", path, "': header is not a JSON object"));
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const auto& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) throw InputError(str("safetensors file '", path, "': __metadata__ is not an object"));
        for (auto m = v.begin(); m != v.end(); ++m)
          metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
        continue;
      }
      auto bad = [&](const std::string& why) {
        return InputError(str("safetensors file '", path, "': tensor '", name, "' ", why));
      };
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw bad("needs dtype, shape and data_offsets");
      TensorInfo t;
      t.name = name;
      if (!v["dtype"].is_string()) throw bad("has a non-string dtype");
      t.dtype = v["dtype"].get<std::string>();
      const size_t es = dtype_size(t.dtype);
      if (es == 0) throw bad(str("has unknown dtype '", t.dtype, "'"));
      if (!v["shape"].is_array()) throw bad("has a non-array shape");
      size_t numel = 1;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("has a shape entry that is not a non-negative integer");
        t.shape.push_back(d.get<int64_t>());
        numel *= static_cast<size_t>(d.get<int64_t>());
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw bad("has data_offsets that are not [begin, end]");
      const size_t b = off[0].get<size_t>(), e = off[1].get<size_t>();
      if (b > e || e > data_size)
        throw bad(str("has data_offsets [", b, ", ", e, "] outside the ", data_size,
                      "-byte data section (file truncated?)"));
      if (e - b != numel * es)
        throw bad(str("has ", e - b, " bytes but dtype ", t.dtype, " x shape needs ", numel * es));
      t.offset = b;
      t.nbytes = e - b;
      index_[name] = tensors_.size();
      tensors_.push_back(std::move(t));
    }
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

File::~File() {
  if (map_) ::munmap(map_, size_);
}

File::File(File&& o) noexcept
    : path_(std::move(o.path_)), map_(o.map_), size_(o.size_), data_start_(o.data_start_),
      tensors_(std::move(o.tensors_)), index_(std::move(o.index_)), metadata_(std::move(o.metadata_)) {
  o.map_ = nullptr;
}

const TensorInfo* File::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const void* File::data(const TensorInfo& t) const {
  return static_cast<const char*>(map_) + data_start_ + t.offset;
}

void write(const std::string& path, const std::vector<WriteTensor>& tensors,
           const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t off = 0;
  std::vector<size_t> offsets;
  for (const auto& t : tensors) {
    size_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<size_t>(d);
    const size_t es = dtype_size(t.dtype);
    GRPO_REQUIRE(es != 0 && numel * es == t.nbytes, "safetensors write '", path, "': tensor '", t.name, "' has ",
                 t.nbytes, " bytes, dtype ", t.dtype, " x shape needs ", numel * es);
    offsets.push_back(off);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // keeps the data section 8-byte aligned
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(str("cannot create '", tmp, "': ", std::strerror(errno)));
  auto put = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw InputError(str("cannot write '", tmp, "': ", std::strerror(e)));
      }
      c += w;
      n -= static_cast<size_t>(w);
    }
  };
  unsigned char len[8];
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
  put(len, 8);
  put(h.data(), h.size());
  for (const auto& t : tensors) put(t.data, t.nbytes);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw InputError(str("cannot flush '", tmp, "': ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw InputError(str("cannot rename '", tmp, "' to '", path, "': ", std::strerror(errno)));
  }
  fs::fsync_dir(std::filesystem::path(path).parent_path().string());
}

}  // namespace grpo::safetensors
