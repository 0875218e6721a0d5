#include "grpo/model/attention.h"

#include "grpo/model/cpu_bf16_attention.h"
#include "grpo/model/cpu_bf16_decode_attention.h"
#include "grpo/model/mkl_serial.h"
#include "grpo/model/packed_linear.h"

#include "fp8_linear.h"
#include "rotary.h"

namespace grpo::model {

AttentionImpl::AttentionImpl(const ModelSpec& s, int64_t layer_index)
    : layer_(layer_index), n_heads_(s.num_attention_heads), n_kv_heads_(s.num_key_value_heads), head_dim_(s.head_dim) {
  auto lin = [](int64_t i, int64_t o, bool bias) { return torch::nn::Linear(torch::nn::LinearOptions(i, o).bias(bias)); };
  q_proj = register_module("q_proj", lin(s.hidden_size, n_heads_ * head_dim_, s.attention_bias));
  k_proj = register_module("k_proj", lin(s.hidden_size, n_kv_heads_ * head_dim_, s.attention_bias));
  v_proj = register_module("v_proj", lin(s.hidden_size, n_kv_heads_ * head_dim_, s.attention_bias));
  o_proj = register_module("o_proj", lin(n_heads_ * head_dim_, s.hidden_size, false));
  if (s.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, s.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, s.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask, KVCache* cache) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = linear(q_proj, x, linear_impl).view({B, T, n_heads_, head_dim_});
  auto k = linear(k_proj, x, linear_impl).view({B, T, n_kv_heads_, head_dim_});
  auto v = linear(v_proj, x, linear_impl).view({B, T, n_kv_heads_, head_dim_}).transpose(1, 2);
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  std::tie(q, k) = apply_rope_qk(q, k, cos, sin, rope_impl);  // [B, H, T, hd], [B, Hkv, T, hd]
  if (cache) std::tie(k, v) = cache->write(layer_, k, v);
  const bool cpu_bf16 = q.is_cpu() && q.scalar_type() == torch::kBFloat16;
  torch::Tensor out;  // [B, H, T, hd]
  if (cpu_bf16 && !cache && T <= kCpuBf16MathBackwardMaxLen && torch::GradMode::is_enabled()) {
    // Training forwards on the CPU in bf16: the same bf16 SDPA forward, a faster float32 backward
    // than LibTorch's bf16 flash-attention one (cpu_bf16_attention.h).
    out = cpu_bf16_sdpa(q, k, v, mask);
  } else if (cpu_bf16 && cache && T == 1 && !torch::GradMode::is_enabled() &&
             cpu_bf16_decode_attention_applies(q, k, v, mask)) {
    // A decode step on the CPU in bf16: one pass per (row, kv head) over the cache, the same
    // arithmetic as the bf16 SDPA below (cpu_bf16_decode_attention.h).
    out = cpu_bf16_decode_attention(q, k, v, mask);
  } else {
    // CPU bf16 SDPA calls MKL once per (row, head, block) inside its own OpenMP region: MKL on one
    // thread skips a nested region per call (same products; mkl_serial.h).
    MklSerial serial(cpu_bf16);
    out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false,
                                           /*scale=*/std::nullopt, /*enable_gqa=*/n_heads_ != n_kv_heads_);
  }
  return linear(o_proj, out.transpose(1, 2).reshape({B, T, n_heads_ * head_dim_}), linear_impl);
}

}  // namespace grpo::model
