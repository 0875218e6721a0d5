#pragma once
// LoRA adapters on a built model (Hu et al. 2021), applied after construction like the kernels
// (apply_kernels.h): apply_lora() attaches a LoraAdapter child named "lora" to every targeted
// torch::nn::Linear and freezes the base weights; model::linear() (packed_linear.h), through which
// every attention and MLP projection runs, adds the adapter's term. The model's forward code does
// not know about LoRA. Semantics as PEFT's LoraLayer (peft 0.18, tuners/lora/layer.py Linear):
//   y = W x + b + scaling * B (A dropout(x)),  scaling = lora_alpha / r  (lora_alpha / sqrt(r) rslora)
// Parameter names: <linear>.lora.A [r, in] and <linear>.lora.B [out, r]
// (PEFT: <linear>.lora_A.weight / <linear>.lora_B.weight, lora_peft.h maps them).
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "grpo/config/lora_config.h"
#include "grpo/model/transformer.h"
#include "grpo/model/weights_io.h"

namespace grpo::model {

class LoraAdapterImpl : public torch::nn::Module {
 public:
  /// A: [r, in], B: [out, r], created in `dtype` on `device`, values from `init` (torch RNG).
  LoraAdapterImpl(int64_t in, int64_t out, int64_t r, double scaling, double dropout, config::LoraInit init,
                  torch::Dtype dtype, torch::Device device);
  /// x: [..., in] (any float dtype) -> scaling * B A dropout(x): [..., out] in x's dtype. Dropout
  /// only in training mode (is_training()), as PEFT's nn.Dropout.
  torch::Tensor delta(const torch::Tensor& x);
  /// (B @ A) * scaling: [out, in] in the adapter dtype, as PEFT's get_delta_weight (for merging).
  torch::Tensor delta_weight() const;

  torch::Tensor A, B;
  double scaling;
  double dropout;
  bool enabled = true;  // false: the linear is the base linear (LoraDisabled)
};
TORCH_MODULE(LoraAdapter);

/// The adapter attached to `l` by apply_lora, or nullptr.
LoraAdapterImpl* lora_adapter(const torch::nn::LinearImpl& l);

/// The PEFT module names that cfg.target_modules selects ("all-linear" expanded to q/k/v/o_proj,
/// gate/up/down_proj). Throws grpo::InputError for a name that is none of those.
std::vector<std::string> lora_target_names(const std::vector<std::string>& target_modules);

/// Attaches adapters to every Linear whose own name is a target (attention projections, dense
/// MLPs and MoE shared experts; never lm_head, the router `gate`, shared_expert_gate or the routed
/// experts, which PEFT does not reach on transformers 5's fused expert tensors either),
/// and sets requires_grad = false on every other parameter. Adapters are float32 when the base is
/// bf16/f16 (PEFT's autocast_adapter_dtype), else the base dtype, on the model's device. No-op
/// when cfg.r == 0. Throws grpo::InputError when nothing matches or the model already has
/// adapters. Logs and returns one line, e.g. "lora: r=16 alpha=32 scaling=2 on 210 linears
/// (q_proj,...), 1843200 trainable parameters".
std::string apply_lora(TransformerImpl& model, const config::LoraConfig& cfg);

/// (full parameter name of the Linear, adapter) for every adapter, in named_modules() order.
std::vector<std::pair<std::string, LoraAdapterImpl*>> lora_adapters(TransformerImpl& model);
bool has_lora(TransformerImpl& model);

/// The adapter parameters by name (<linear>.lora.A, <linear>.lora.B), in a fixed order.
NamedTensors lora_weights(TransformerImpl& model);

/// While alive, every adapter of the model is switched off: the model computes the base model
/// (the GRPO reference policy without a second copy). Restores each adapter's previous state.
class LoraDisabled {
 public:
  explicit LoraDisabled(TransformerImpl& model);
  ~LoraDisabled();
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;

 private:
  std::vector<std::pair<LoraAdapterImpl*, bool>> saved_;
};

/// The model's weights with the adapters merged: named_parameters() minus the adapters, each
/// targeted weight replaced by W + delta_weight() cast to W's dtype (PEFT's merge), as new
/// tensors; the model is unchanged.
NamedTensors merged_weights(TransformerImpl& model);

}  // namespace grpo::model

namespace grpo::model {

/// PEFT's merge_and_unload(): every targeted weight becomes W + delta_weight() (in W's dtype) and
/// the adapters are removed; the model is then a plain model (requires_grad left as it was).
void merge_and_unload(TransformerImpl& model);

}  // namespace grpo::model
