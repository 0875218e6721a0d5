#pragma once
// The one table from a Hugging Face architecture name to what differs between the supported
// families: forced features and how our parameter names map to checkpoint tensor names (in the
// spirit of llama.cpp's LLM_ARCH / LLM_TENSOR tables). Our names are HF's Llama/Qwen2-MoE names
// without the "model." prefix, so most families need no renaming at all.
#include <string>
#include <utility>
#include <vector>

namespace grpo::model {

/// How a family stores its MoE feed-forward.
enum class MoeLayout { NONE, MIXTRAL, QWEN2_MOE, QWEN3_MOE };

struct ArchInfo {
  std::string hf_class;    // "LlamaForCausalLM"
  std::string model_type;  // config.json model_type, "llama"
  bool forced_qkv_bias;    // Qwen2 always has q/k/v biases (no config key)
  bool qk_norm;            // Qwen3 families: per-head q/k RMSNorm
  MoeLayout moe;
  /// Substring renames applied in order to "model." + our name to get the checkpoint name.
  std::vector<std::pair<std::string, std::string>> renames;
};

/// Every supported architecture, in a fixed order.
const std::vector<ArchInfo>& arch_table();

/// The entry for `hf_class`. Throws grpo::InputError listing the supported names when unknown;
/// `where` (e.g. the config.json path) starts the message.
const ArchInfo& arch_info(const std::string& hf_class, const std::string& where);

/// Checkpoint tensor name of our parameter/buffer `name` (e.g. "layers.0.mlp.experts.3.up_proj.weight"
/// -> "model.layers.0.block_sparse_moe.experts.3.w3.weight" for Mixtral). lm_head stays top-level.
std::string hf_tensor_name(const ArchInfo& arch, const std::string& name);

/// Our buffers that checkpoints of these families do not carry (the aux-loss-free routing bias);
/// they keep their initial value when missing from a file.
bool is_optional_tensor(const std::string& name);

/// llama.cpp (GGUF, arch "llama") tensor name of our parameter `name`, or "" when it has none.
/// e.g. "layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight", "lm_head.weight" -> "output.weight".
std::string gguf_tensor_name(const std::string& name);

}  // namespace grpo::model
