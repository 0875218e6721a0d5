#pragma once
// The resolved hyper-parameters of one decoder-only transformer: everything the modules need to
// be built, whichever way the model was described (a config::ModelConfig for training from
// scratch, a Hugging Face config.json, GGUF metadata). Field names follow HF config.json.
#include <string>
#include <vector>

#include "grpo/config/model_config.h"

namespace grpo::model {

/// Llama-3 style RoPE frequency scaling (HF rope_type "llama3"); factor == 0 means none.
struct RopeScaling {
  double factor = 0.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

/// MoE routing and balancing. num_experts == 0 means every layer is a dense SwiGLU MLP.
struct MoeSpec {
  int num_experts = 0;
  int top_k = 2;
  int n_shared_experts = 0;          // fused into one always-on SwiGLU of width shared_intermediate_size
  int moe_intermediate_size = 0;     // width of each routed expert
  int shared_intermediate_size = 0;  // width of the fused shared expert (0 when n_shared_experts == 0)
  bool shared_expert_gate = false;   // Qwen2-MoE: shared output scaled by sigmoid(Linear(D -> 1))
  int first_k_dense_replace = 0;     // bottom layers kept dense (DeepSeek)
  int decoder_sparse_step = 1;       // Qwen2/3-MoE: layer i is MoE iff (i + 1) % step == 0
  std::vector<int> mlp_only_layers;  // Qwen2/3-MoE: layers forced dense
  config::RouterScoring scoring = config::RouterScoring::SOFTMAX;
  bool norm_topk_prob = true;
  double router_aux_loss_coef = 0.001;
  double bias_update_speed = 0.0;
};

struct ModelSpec {
  std::string architecture = "LlamaForCausalLM";  // HF class name; selects the weight-name table
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  int max_position_embeddings = 2048;
  int sliding_window = 0;  // 0: full attention; else a key is visible iff q_pos - k_pos < window (Mistral)
  bool tie_word_embeddings = true;
  bool attention_bias = false;  // biases on q/k/v (Qwen2); o_proj never has one
  bool qk_norm = false;         // per-head RMSNorm of q and k before RoPE (Qwen3)
  double initializer_range = 0.02;
  int bos_token_id = -1;
  int eos_token_id = -1;
  MoeSpec moe;

  /// True when layer `i` uses the MoE block (DeepSeek first_k_dense_replace, Qwen decoder_sparse_step
  /// and mlp_only_layers all apply).
  bool is_moe_layer(int i) const;

  /// Checks positivity and divisibility (heads % kv_heads, top_k <= experts, ...). Throws
  /// grpo::InputError starting with `where` (a file or "model config") naming the bad field.
  void validate(const std::string& where) const;

  /// Parameters in total and those a single token touches (routed experts counted top_k times out
  /// of num_experts; the embedding counted once, the untied head once).
  int64_t parameter_count() const;
  int64_t active_parameter_count() const;
};

/// The spec of a new model described by the `model:` config section (vocab_size must be > 0 by
/// now: the caller fills it from the tokenizer). Architecture: Qwen3 when qk_norm, Qwen2 when
/// attention_bias, Llama otherwise; with MoE, Qwen3MoE/Qwen2MoE/Mixtral the same way. Throws
/// grpo::InputError on an inconsistent config.
ModelSpec spec_from_config(const config::ModelConfig& cfg);

}  // namespace grpo::model
