#pragma once
// lora: low-rank adapters on the policy's linear layers (Hu et al. 2021, "LoRA"); names and
// semantics as PEFT's LoraConfig (peft 0.18), docs/training.md "LoRA".
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

/// PEFT's init_lora_weights: True (A kaiming-uniform as nn.Linear, i.e. U(-1/sqrt(in), 1/sqrt(in)),
/// B zero: the adapted model starts equal to the base), "gaussian" (A ~ N(0, 1/r^2), i.e. std 1/r,
/// B zero) or False (A and B both nn.Linear's default init: the adapted model differs from the base
/// from step 0; for tests, as PEFT documents).
enum class LoraInit { KAIMING, GAUSSIAN, RANDOM };
template <> struct EnumNames<LoraInit> {
  static constexpr std::pair<LoraInit, std::string_view> items[] = {
      {LoraInit::KAIMING, "true"}, {LoraInit::GAUSSIAN, "gaussian"}, {LoraInit::RANDOM, "false"}};
};

struct LoraConfig {
  int r = 0;  // 0: full fine-tuning (no adapters)
  double lora_alpha = 8.0;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules = {"all-linear"};
  bool use_rslora = false;
  LoraInit init_lora_weights = LoraInit::KAIMING;
  std::string adapter_path;  // a PEFT adapter directory to start from

  bool enabled() const { return r > 0; }

  template <class V> void visit(V& v) {
    v("r", r,
      "LoRA rank. 0 = full fine-tuning; > 0 freezes the base weights and trains adapters B @ A (A: [r, in], B: [out, r]) "
      "on the target modules; the reference policy (grpo.beta > 0) is then the base with the adapters switched off.",
      at_least(0));
    v("lora_alpha", lora_alpha, "Scaling numerator: the adapter adds (lora_alpha / r) * B @ A x (lora_alpha / sqrt(r) with use_rslora).",
      greater_than(0.0));
    v("lora_dropout", lora_dropout, "Dropout on the adapter's input in training forwards (PEFT's lora_dropout).",
      between(0.0, 0.999));
    v("target_modules", target_modules,
      "Linear layers that get adapters, by PEFT module name: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
      "down_proj, or all-linear (all of those; never lm_head, the MoE router, shared_expert_gate or routed "
      "experts: MoE layers get adapters on their shared expert only). Default all-linear (PEFT's own default for Llama is q_proj, v_proj).");
    v("use_rslora", use_rslora, "Rank-stabilised scaling lora_alpha / sqrt(r) (Kalajdzievski 2023) instead of lora_alpha / r.");
    v("init_lora_weights", init_lora_weights,
      "Adapter initialisation as PEFT: true = A kaiming-uniform U(-1/sqrt(in), 1/sqrt(in)), B = 0; gaussian = A ~ N(0, (1/r)^2), "
      "B = 0; false = A and B both kaiming-uniform (the model differs from the base at step 0; tests only). Uses the "
      "torch RNG seeded by trainer.seed.");
    v("adapter_path", adapter_path,
      "A PEFT adapter directory (adapter_config.json + adapter_model.safetensors) whose adapters to load and continue "
      "training; its r, lora_alpha, use_rslora and target_modules replace the keys above. Empty = new adapters.");
  }
};

}  // namespace grpo::config
