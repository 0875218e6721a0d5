#pragma once
// Named tensors <-> safetensors files: the one place that maps torch dtypes to safetensors dtype
// names, writes a list of named tensors, and copies a file's entries into existing tensors by name.
// Checkpoints (train/checkpoint), grpo weights directories (train/policy) and Hugging Face
// directories (model/hf_weights) all go through it. The file format itself (header, mmap, durable
// write) is util/safetensors, which has no torch.
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "grpo/util/safetensors.h"

namespace grpo::model {

/// Named tensors in a fixed order (e.g. a model's named_parameters() then named_buffers()).
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// The safetensors name of a torch dtype: F32, BF16, F16, F64, I64 or I32. Throws
/// grpo::InputError for any other dtype.
std::string safetensors_dtype(torch::ScalarType dtype);

/// The torch dtype of a safetensors dtype name (the six above). Throws grpo::InputError naming
/// `where` (file and tensor) for any other name.
torch::ScalarType torch_dtype(const std::string& safetensors_dtype, const std::string& where);

/// Writes `tensors` to `path` in the order given (util/safetensors::write: temp file, fsync,
/// rename). Each tensor is copied to the CPU first, converted to `dtype` when one is given (else
/// kept in its own); the copies live until the file is written, so the caller's tensors may be on
/// any device. Throws grpo::InputError for an undefined tensor, an unsupported dtype, or a file
/// that cannot be written.
void write_named(const std::string& path, const NamedTensors& tensors,
                 const std::map<std::string, std::string>& metadata,
                 std::optional<torch::ScalarType> dtype = std::nullopt);

/// Copies the entry `info` of `file` into `dst` (converted to dst's dtype and device; no grad
/// recorded). Throws grpo::InputError "<file>: tensor '<name>' has shape [..], <expected_by>
/// expects [..]" when the shapes differ, or naming the dtype when it has no torch equivalent.
void read_tensor(const safetensors::File& file, const safetensors::TensorInfo& info, const torch::Tensor& dst,
                 const std::string& expected_by = "the model");

/// What read_named does with entries of the file that `into` does not name.
enum class ExtraTensors { IGNORE, REJECT };

/// Fills every tensor of `into` from the entry of the same name in `file` (read_tensor). Throws
/// grpo::InputError naming the file and the tensor when one is missing, and, with
/// ExtraTensors::REJECT, when the file holds a tensor that `into` does not name.
void read_named(const safetensors::File& file, const NamedTensors& into, ExtraTensors extra);

}  // namespace grpo::model
