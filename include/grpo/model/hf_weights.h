#pragma once
// Hugging Face checkpoints: a directory with config.json and model.safetensors, or shards listed
// in model.safetensors.index.json. Tensor names come from arch_table.h.
#include <string>

#include "grpo/model/transformer.h"

namespace grpo::model {

/// Builds the model described by <dir>/config.json and fills it from the safetensors file(s)
/// (bf16/fp16/fp32 converted to float32). Throws grpo::InputError naming the file and tensor for
/// a missing config or weights file, a malformed file, a missing tensor, or a shape mismatch
/// (both shapes given). Extra tensors in the files are ignored.
Transformer load_hf(const std::string& dir);

/// Fills an existing model's parameters from the safetensors file(s) in `dir`, as above.
void load_hf_weights(Transformer& model, const std::string& dir);

/// Writes <dir>/config.json and <dir>/model.safetensors (tensors in `dtype`: kFloat32, kBFloat16
/// or kFloat16) that transformers' AutoModelForCausalLM.from_pretrained loads. Creates `dir`.
/// Throws grpo::InputError when the model has no HF equivalent or the directory is not writable.
void save_hf(Transformer& model, const std::string& dir, torch::Dtype dtype = torch::kFloat32);

}  // namespace grpo::model
