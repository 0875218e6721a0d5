#pragma once
// The lora: section applied to a loaded policy (model/lora.h does the model side): where its
// adapters come from, what checkpoints save, and the PEFT files of a stage's final/ directory.
#include <string>

#include "grpo/config/config.h"
#include "grpo/model/transformer.h"
#include "grpo/model/weights_io.h"

namespace grpo::train {

/// Call after load_policy (and apply_kernels). Adapters, in order of precedence:
///  1. model.path is a grpo weights directory with PEFT adapter files (a LoRA stage's final/):
///     its adapters (adapter_config.json + adapter_model.safetensors), to continue;
///  2. lora.adapter_path: a PEFT adapter directory (its adapter_config.json replaces r, lora_alpha,
///     lora_dropout, use_rslora, target_modules), to continue training it;
///  3. lora.r > 0: new adapters (init_lora_weights, torch RNG seeded with trainer.seed).
/// Otherwise nothing changes (full fine-tuning). Returns the LoraConfig in effect (r == 0: none).
/// Throws grpo::InputError for unreadable or mismatching adapter files.
config::LoraConfig apply_config_lora(model::Transformer& model, const config::Config& cfg);

/// What a checkpoint holds of the model: the adapters only when it has LoRA adapters (the base
/// comes back from model.path on resume), else every weight (policy_weights).
model::NamedTensors checkpoint_weights(model::Transformer& model);

/// When the model has adapters: <dir>/adapter_config.json + adapter_model.safetensors (PEFT's
/// layout, for peft.PeftModel.from_pretrained on base `cfg.model.path`). A no-op otherwise.
void save_lora_adapter_files(model::Transformer& model, const config::LoraConfig& lora, const config::Config& cfg,
                             const std::string& dir);

}  // namespace grpo::train
