#pragma once
// PEFT adapter directories <-> the model's LoRA adapters (lora.h): adapter_config.json and
// adapter_model.safetensors as peft's save_pretrained writes them and PeftModel.from_pretrained
// reads them. Key names: base_model.model.model.<linear>.lora_A.weight / .lora_B.weight for our
// <linear>.lora.A / <linear>.lora.B (`model.` prefix: transformers' *ForCausalLM layout).
#include <string>

#include "grpo/config/lora_config.h"
#include "grpo/model/transformer.h"
#include "grpo/model/weights_io.h"

namespace grpo::model {

/// The PEFT name of one of our adapter tensors ("layers.0.self_attn.q_proj.lora.A" ->
/// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
std::string peft_adapter_key(const std::string& ours);

/// Writes <dir>/adapter_config.json (peft_type LORA, task_type CAUSAL_LM, r, lora_alpha,
/// lora_dropout, use_rslora, target_modules as the PEFT names actually adapted, bias none,
/// base_model_name_or_path) and <dir>/adapter_model.safetensors (the adapters in their dtype).
/// Creates dir. Throws grpo::InputError when the model has no adapters or a file cannot be written.
void save_peft_adapter(TransformerImpl& model, const config::LoraConfig& cfg, const std::string& base_model,
                       const std::string& dir);

/// The LoraConfig of <dir>/adapter_config.json: r, lora_alpha, lora_dropout, use_rslora and
/// target_modules (a list or PEFT's single string, "all-linear" included); adapter_path = dir.
/// Throws grpo::InputError for a missing file, a peft_type other than LORA, or settings this
/// model layer cannot reproduce (bias other than none, fan_in_fan_out, DoRA, rank_pattern,
/// alpha_pattern, layers_to_transform).
config::LoraConfig read_peft_adapter_config(const std::string& dir);

/// Loads <dir>/adapter_model.safetensors into the model's adapters (apply_lora with the config of
/// read_peft_adapter_config first). Every adapter must be in the file with the same shape, and
/// every lora tensor of the file must belong to an adapter; throws grpo::InputError otherwise.
void load_peft_adapter_weights(TransformerImpl& model, const std::string& dir);

}  // namespace grpo::model
