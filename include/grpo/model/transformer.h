#pragma once
// The policy: a decoder-only transformer (Llama / Mistral / Qwen2 / Qwen3 and their MoE variants
// Mixtral / Qwen2-MoE / Qwen3-MoE / DeepSeekMoE-style), float32 on CPU unless moved with .to().
// Parameter names are those of HF checkpoints without the "model." prefix (embed_tokens.weight,
// layers.N.self_attn.q_proj.weight, ..., norm.weight, lm_head.weight when untied), so
// named_parameters() feeds torch::optim::AdamW and the weight tables in arch_table.h directly.
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <vector>

#include "grpo/model/block.h"
#include "grpo/model/kv_cache.h"
#include "grpo/model/model_spec.h"
#include "grpo/model/norm.h"

namespace grpo::model {

/// Result of Transformer::forward.
struct ForwardOutput {
  torch::Tensor hidden;    // [B, T, D] after the final RMSNorm, the parameter dtype
  torch::Tensor aux_loss;  // scalar float32: switch-style load-balancing loss, exactly HF's
                           // load_balancing_loss_func over all MoE layers (unscaled: the trainer adds
                           // spec().moe.router_aux_loss_coef * aux_loss); 0 for a dense model
  std::vector<int64_t> moe_layers;         // indices of the MoE layers, in order
  std::vector<torch::Tensor> expert_load;  // per MoE layer [E] float32: tokens routed to each expert
                                           // (top-k assignments of non-padding tokens)
};

class TransformerImpl : public torch::nn::Module {
 public:
  /// A new model with HF-style initialisation: N(0, initializer_range) for linear and embedding
  /// weights, zero biases, unit norms (uses the global torch RNG: seed it for reproducibility).
  /// Throws grpo::InputError when the spec is invalid.
  explicit TransformerImpl(ModelSpec spec);

  /// input_ids: [B, T] int64. attention_mask: [B, T] (1 = token, 0 = padding; undefined = all ones).
  /// Without a cache: causal attention over the sequence; positions are cumsum(mask) - 1, so both
  /// left- and right-padded batches work, and padding keys are never attended.
  /// With a cache: the tokens are appended to each row after its cached ones (see kv_cache.h:
  /// right padding only, positions continue from cache->lengths()), and the cache advances by
  /// the number of ones per row. Throws grpo::InputError for a left-padded chunk with a cache,
  /// ids out of [0, vocab_size) or a cache that is too small.
  ForwardOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);

  /// hidden: [..., D] -> logits [..., V] in the parameter dtype (tied head = embed_tokens.weight).
  /// Separate from forward() so token log-probs can be computed chunk by chunk.
  torch::Tensor logits(const torch::Tensor& hidden);

  /// DeepSeek-V3 aux-loss-free balancing: on every MoE layer, bias += bias_update_speed *
  /// sign(mean load - load) for the load of training-mode forwards since the last call. Call once
  /// after each optimizer step; a no-op when bias_update_speed == 0 or the model is dense.
  void update_expert_bias();

  /// A KV cache matching this model's layers and heads, in its parameter dtype and device.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  /// Activation checkpointing (trainer.gradient_checkpointing): when on, forwards with grad
  /// enabled and no KV cache run each block through checkpointed_block_forward (its activations
  /// are recomputed in backward instead of kept). Values and gradients are unchanged.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  /// Runs decoder block `layer` in place of block.forward (and of activation checkpointing):
  /// how a sharded data-parallel wrapper (dist::Sharder, sharding full) gathers a block's
  /// parameters around its forward and backward. Null (the default) = the plain forward.
  using BlockRunner = std::function<std::pair<torch::Tensor, std::optional<MoeStats>>(
      size_t layer, BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
      const torch::Tensor& mask, KVCache* cache, const torch::Tensor& valid)>;
  void set_block_runner(BlockRunner runner) { block_runner_ = std::move(runner); }

  const ModelSpec& spec() const { return spec_; }
  torch::Dtype dtype() const;
  torch::Device device() const;

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  ModelSpec spec_;
  torch::Tensor inv_freq_;  // [head_dim / 2] float32, moved to the ids' device on use
  bool gradient_checkpointing_ = false;
  BlockRunner block_runner_;
};
TORCH_MODULE(Transformer);

}  // namespace grpo::model
