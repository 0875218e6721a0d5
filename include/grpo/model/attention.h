#pragma once
// Grouped-query causal self-attention (Ainslie et al. 2023, GQA) with RoPE, optional q/k/v biases
// (Qwen2) and optional per-head q/k RMSNorm before RoPE (Qwen3), computed by
// at::scaled_dot_product_attention. Weight names follow HF (q_proj, k_proj, v_proj, o_proj,
// q_norm, k_norm).
#include <torch/torch.h>

#include "grpo/model/kv_cache.h"
#include "grpo/model/model_spec.h"
#include "grpo/model/norm.h"
#include "grpo/model/op_impl.h"

namespace grpo::model {

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelSpec& spec, int64_t layer_index);
  /// x: [B, T, D]; cos/sin: [B, T, head_dim] float32 (rope_cos_sin of the tokens' positions);
  /// mask: [B, 1, T, S] bool, true = may attend (S = T without a cache, the cache's filled prefix
  /// with one). With `cache`, k/v are appended to layer `layer_index` of it first.
  /// Returns [B, T, D] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};
  OpImpl rope_impl = OpImpl::PLAIN;  // set by apply_kernels (rotary.h apply_rope_qk)
  LinearImpl linear_impl = LinearImpl::PLAIN;  // q/k/v/o: nn::Linear or FP8 (set by apply_kernels)

 private:
  int64_t layer_, n_heads_, n_kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

}  // namespace grpo::model
