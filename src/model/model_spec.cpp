#include "grpo/model/model_spec.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::model {

bool ModelSpec::is_moe_layer(int i) const {
  if (moe.num_experts <= 0) return false;
  if (i < moe.first_k_dense_replace) return false;
  if (std::find(moe.mlp_only_layers.begin(), moe.mlp_only_layers.end(), i) != moe.mlp_only_layers.end()) return false;
  return (i + 1) % std::max(1, moe.decoder_sparse_step) == 0;
}

void ModelSpec::validate(const std::string& where) const {
  auto need = [&](bool ok, const std::string& field, auto value, const std::string& expected) {
    GRPO_REQUIRE(ok, where, ": ", field, " = ", value, ", expected ", expected);
  };
  need(vocab_size > 0, "vocab_size", vocab_size, "> 0");
  need(hidden_size > 0, "hidden_size", hidden_size, "> 0");
  need(intermediate_size > 0, "intermediate_size", intermediate_size, "> 0");
  need(num_hidden_layers > 0, "num_hidden_layers", num_hidden_layers, "> 0");
  need(num_attention_heads > 0, "num_attention_heads", num_attention_heads, "> 0");
  need(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0, "num_key_value_heads",
       num_key_value_heads, str("a divisor of num_attention_heads (", num_attention_heads, ")"));
  need(head_dim > 0 && head_dim % 2 == 0, "head_dim", head_dim, "an even number > 0");
  need(rope_theta > 0, "rope_theta", rope_theta, "> 0");
  need(rms_norm_eps > 0, "rms_norm_eps", rms_norm_eps, "> 0");
  need(sliding_window >= 0, "sliding_window", sliding_window, ">= 0");
  if (rope_scaling.factor != 0) {
    need(rope_scaling.factor > 0, "rope_scaling.factor", rope_scaling.factor, "> 0");
    need(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor, "rope_scaling.high_freq_factor",
         rope_scaling.high_freq_factor, "> low_freq_factor");
    need(rope_scaling.original_max_position_embeddings > 0, "rope_scaling.original_max_position_embeddings",
         rope_scaling.original_max_position_embeddings, "> 0");
  }
  if (moe.num_experts > 0) {
    need(moe.top_k >= 1 && moe.top_k <= moe.num_experts, "num_experts_per_tok", moe.top_k,
         str("between 1 and num_experts (", moe.num_experts, ")"));
    need(moe.moe_intermediate_size > 0, "moe_intermediate_size", moe.moe_intermediate_size, "> 0");
    need(moe.n_shared_experts == 0 || moe.shared_intermediate_size > 0, "shared_expert_intermediate_size",
         moe.shared_intermediate_size, "> 0 when there are shared experts");
    need(moe.decoder_sparse_step >= 1, "decoder_sparse_step", moe.decoder_sparse_step, ">= 1");
  }
}

namespace {
int64_t mlp_params(int64_t d, int64_t inter) { return 3 * d * inter; }
int64_t attn_params(const ModelSpec& s) {
  const int64_t d = s.hidden_size, q = int64_t(s.num_attention_heads) * s.head_dim,
                kv = int64_t(s.num_key_value_heads) * s.head_dim;
  int64_t n = d * q + 2 * d * kv + q * d;
  if (s.attention_bias) n += q + 2 * kv;
  if (s.qk_norm) n += 2 * s.head_dim;
  return n;
}
int64_t count(const ModelSpec& s, bool active) {
  const int64_t d = s.hidden_size;
  int64_t n = int64_t(s.vocab_size) * d * (s.tie_word_embeddings ? 1 : 2) + d;  // embeddings, head, final norm
  for (int i = 0; i < s.num_hidden_layers; ++i) {
    n += attn_params(s) + 2 * d;
    if (!s.is_moe_layer(i)) {
      n += mlp_params(d, s.intermediate_size);
      continue;
    }
    const auto& m = s.moe;
    n += int64_t(m.num_experts) * d;  // router
    n += int64_t(active ? m.top_k : m.num_experts) * mlp_params(d, m.moe_intermediate_size);
    if (m.n_shared_experts > 0) n += mlp_params(d, m.shared_intermediate_size);
    if (m.shared_expert_gate) n += d;
  }
  return n;
}
}  // namespace

int64_t ModelSpec::parameter_count() const { return count(*this, false); }
int64_t ModelSpec::active_parameter_count() const { return count(*this, true); }

ModelSpec spec_from_config(const config::ModelConfig& c) {
  ModelSpec s;
  const bool moe = c.moe.num_experts > 0;
  if (c.qk_norm)
    s.architecture = moe ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM";
  else if (c.attention_bias)
    s.architecture = moe ? "Qwen2MoeForCausalLM" : "Qwen2ForCausalLM";
  else
    s.architecture = moe ? "MixtralForCausalLM" : "LlamaForCausalLM";
  s.vocab_size = c.vocab_size;
  s.hidden_size = c.hidden_size;
  s.intermediate_size = c.intermediate_size;
  s.num_hidden_layers = c.num_hidden_layers;
  s.num_attention_heads = c.num_attention_heads;
  s.num_key_value_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim > 0 ? c.head_dim : (c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  s.rope_theta = c.rope_theta;
  s.rms_norm_eps = c.rms_norm_eps;
  s.max_position_embeddings = c.max_position_embeddings;
  s.tie_word_embeddings = c.tie_word_embeddings;
  s.attention_bias = c.attention_bias;
  s.qk_norm = c.qk_norm;
  s.initializer_range = c.initializer_range;
  s.moe.num_experts = c.moe.num_experts;
  s.moe.top_k = c.moe.num_experts_per_tok;
  s.moe.n_shared_experts = c.moe.n_shared_experts;
  s.moe.moe_intermediate_size = c.moe.moe_intermediate_size > 0 ? c.moe.moe_intermediate_size : c.intermediate_size;
  s.moe.shared_intermediate_size = c.moe.n_shared_experts * s.moe.moe_intermediate_size;
  s.moe.first_k_dense_replace = c.moe.first_k_dense_replace;
  s.moe.scoring = c.moe.scoring_func;
  s.moe.norm_topk_prob = c.moe.norm_topk_prob;
  s.moe.router_aux_loss_coef = c.moe.router_aux_loss_coef;
  s.moe.bias_update_speed = c.moe.bias_update_speed;
  if (moe && c.moe.n_shared_experts > 0 && s.architecture == "MixtralForCausalLM")
    s.architecture = "Qwen2MoeForCausalLM";  // the only listed HF layout with a shared expert
  // Shared experts are exported as Qwen2-MoE's, which always gates them; keep the model exportable.
  s.moe.shared_expert_gate = moe && c.moe.n_shared_experts > 0;
  GRPO_REQUIRE(!(s.moe.shared_expert_gate && s.architecture == "Qwen3MoeForCausalLM"), "model config: ",
               "moe.n_shared_experts > 0 with qk_norm has no Hugging Face layout (Qwen3-MoE has no shared expert)");
  s.validate("model config");
  return s;
}

}  // namespace grpo::model
