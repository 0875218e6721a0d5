#include "grpo/model/block.h"

namespace grpo::model {

BlockImpl::BlockImpl(const ModelSpec& s, int64_t i) {
  input_layernorm = register_module("input_layernorm", RMSNorm(s.hidden_size, s.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(s, i));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(s.hidden_size, s.rms_norm_eps));
  if (s.is_moe_layer(static_cast<int>(i)))
    moe = register_module("mlp", Moe(s));
  else
    mlp = register_module("mlp", Mlp(s.hidden_size, s.intermediate_size));
}

std::pair<torch::Tensor, std::optional<MoeStats>> BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                                                     const torch::Tensor& sin, const torch::Tensor& mask,
                                                                     KVCache* cache, const torch::Tensor& valid) {
  // h = x + attn; n = norm(h): one fused op when the norm's implementation is GRPO.
  auto [n, h] = post_attention_layernorm->add_forward(self_attn(input_layernorm(x), cos, sin, mask, cache), x);
  if (mlp) return {h + mlp(n), std::nullopt};
  auto [y, stats] = moe(n, valid);
  return {h + y, stats};
}

}  // namespace grpo::model
