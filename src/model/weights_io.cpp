#include "grpo/model/weights_io.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::model {

namespace {

// The one dtype table: torch dtype <-> safetensors name. Everything a model holds (float weights,
// integer buffers); safetensors::File rejects names it cannot size, torch_dtype() the rest.
struct DtypeName {
  torch::ScalarType torch;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kFloat32, "F32"}, {torch::kBFloat16, "BF16"}, {torch::kFloat16, "F16"},
    {torch::kFloat64, "F64"}, {torch::kInt64, "I64"},     {torch::kInt32, "I32"},
};

}  // namespace

std::string safetensors_dtype(torch::ScalarType dtype) {
  for (const auto& d : kDtypes)
    if (d.torch == dtype) return d.name;
  throw InputError(grpo::str("cannot write a tensor of dtype ", dtype, " to safetensors (F32, BF16, F16, F64, I64, I32)"));
}

torch::ScalarType torch_dtype(const std::string& safetensors_dtype, const std::string& where) {
  for (const auto& d : kDtypes)
    if (safetensors_dtype == d.name) return d.torch;
  throw InputError(grpo::str(where, ": dtype ", safetensors_dtype, " is not supported (F32, BF16, F16, F64, I64, I32)"));
}

void write_named(const std::string& path, const NamedTensors& tensors,
                 const std::map<std::string, std::string>& metadata, std::optional<torch::ScalarType> dtype) {
  std::vector<torch::Tensor> cpu;  // the CPU copies the file is written from
  std::vector<safetensors::WriteTensor> entries;
  cpu.reserve(tensors.size());
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    GRPO_REQUIRE(t.defined(), path, ": tensor '", name, "' is undefined");
    cpu.push_back(t.detach().to(torch::kCPU, dtype.value_or(t.scalar_type())).contiguous());
    const auto& c = cpu.back();
    entries.push_back({name, safetensors_dtype(c.scalar_type()), c.sizes().vec(), c.data_ptr(), c.nbytes()});
  }
  safetensors::write(path, entries, metadata);
}

void read_tensor(const safetensors::File& file, const safetensors::TensorInfo& info, const torch::Tensor& dst,
                 const std::string& expected_by) {
  GRPO_REQUIRE(torch::IntArrayRef(info.shape) == dst.sizes(), file.path(), ": tensor '", info.name, "' has shape ",
               torch::IntArrayRef(info.shape), ", ", expected_by, " expects ", dst.sizes());
  const auto dtype = torch_dtype(info.dtype, grpo::str(file.path(), ": tensor '", info.name, "'"));
  // A view of the mapping: copy_ converts dtype and device and only reads it.
  auto src = torch::from_blob(const_cast<void*>(file.data(info)), info.shape, torch::TensorOptions().dtype(dtype));
  torch::NoGradGuard no_grad;
  dst.detach().copy_(src);
}

void read_named(const safetensors::File& file, const NamedTensors& into, ExtraTensors extra) {
  std::vector<std::string> names;
  names.reserve(into.size());
  for (const auto& [name, t] : into) {
    const auto* info = file.find(name);
    GRPO_REQUIRE(info != nullptr, file.path(), ": tensor '", name, "' is missing");
    read_tensor(file, *info, t);
    names.push_back(name);
  }
  if (extra == ExtraTensors::IGNORE) return;
  std::sort(names.begin(), names.end());
  for (const auto& info : file.tensors())
    GRPO_REQUIRE(std::binary_search(names.begin(), names.end(), info.name), file.path(), ": has tensor '", info.name,
                 "' that the model does not have");
}

}  // namespace grpo::model
