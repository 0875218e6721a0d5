#pragma once
// One entry point to get the policy: from a path (HF directory or .gguf file) or from the
// `model:` config section (a path, or a new model from its architecture fields).
#include <string>

#include "grpo/config/model_config.h"
#include "grpo/model/transformer.h"

namespace grpo::model {

/// Loads `path`: a directory with config.json (Hugging Face layout, also what save_hf and grpo
/// checkpoints write) or a .gguf file. float32 on CPU. Throws grpo::InputError for anything else,
/// naming the path.
Transformer load_model(const std::string& path);

/// The model the `model:` section describes: load_model(cfg.path) when set, else a new model from
/// spec_from_config (vocab_size must be > 0: fill it from the tokenizer first), then moved to
/// cfg.dtype and cfg.device. Throws grpo::InputError on a bad config or file.
Transformer build_model(const config::ModelConfig& cfg);

/// "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N". Throws grpo::InputError.
torch::Device resolve_device(const std::string& name);

/// kFloat32 / kBFloat16 / kFloat16 for the config enum.
torch::Dtype to_torch_dtype(config::DType dtype);

}  // namespace grpo::model
