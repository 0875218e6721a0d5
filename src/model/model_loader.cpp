#include "grpo/model/model_loader.h"

#include <filesystem>

#include "grpo/model/gguf_weights.h"
#include "grpo/model/hf_weights.h"
#include "grpo/util/error.h"

namespace grpo::model {

Transformer load_model(const std::string& path) {
  namespace stdfs = std::filesystem;
  GRPO_REQUIRE(stdfs::exists(path), path, ": no such file or directory");
  if (stdfs::is_directory(path)) {
    GRPO_REQUIRE(stdfs::exists(stdfs::path(path) / "config.json"), path,
                 ": directory has no config.json (expected a Hugging Face model directory)");
    return load_hf(path);
  }
  if (path.ends_with(".gguf")) return load_gguf(path);
  throw InputError(str(path, ": expected a Hugging Face model directory or a .gguf file"));
}

torch::Device resolve_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  try {
    torch::Device d(name);
    GRPO_REQUIRE(d.is_cpu() || torch::cuda::is_available(), "model.device: '", name, "' but CUDA is not available");
    return d;
  } catch (const c10::Error&) {
    throw InputError(str("model.device: '", name, "' is not a device (auto, cpu, cuda, cuda:N)"));
  }
}

torch::Dtype to_torch_dtype(config::DType d) {
  switch (d) {
    case config::DType::BFLOAT16: return torch::kBFloat16;
    case config::DType::FLOAT16: return torch::kFloat16;
    case config::DType::FLOAT64: return torch::kFloat64;
    default: return torch::kFloat32;
  }
}

Transformer build_model(const config::ModelConfig& cfg) {
  Transformer m = cfg.path.empty() ? Transformer(spec_from_config(cfg)) : load_model(cfg.path);
  m->to(resolve_device(cfg.device), to_torch_dtype(cfg.dtype));
  return m;
}

}  // namespace grpo::model
