#pragma once
// One pre-norm decoder block: x + attn(norm(x)), then h + ffn(norm(h)), where ffn is a dense
// SwiGLU or a MoE layer (both registered as "mlp", the HF name).
#include <torch/torch.h>

#include <optional>

#include "grpo/model/attention.h"
#include "grpo/model/mlp.h"
#include "grpo/model/moe.h"
#include "grpo/model/norm.h"

namespace grpo::model {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelSpec& spec, int64_t layer_index);
  /// x: [B, T, D]; cos/sin/mask/cache as in Attention::forward; valid: [B*T] float32 or undefined.
  /// Returns the block output [B, T, D] and, for a MoE block, its routing statistics.
  std::pair<torch::Tensor, std::optional<MoeStats>> forward(const torch::Tensor& x, const torch::Tensor& cos,
                                                            const torch::Tensor& sin, const torch::Tensor& mask,
                                                            KVCache* cache, const torch::Tensor& valid);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  Moe moe{nullptr};
};
TORCH_MODULE(Block);

}  // namespace grpo::model
