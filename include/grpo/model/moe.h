#pragma once
// Mixture-of-experts feed-forward, dropless (every token reaches all of its top_k experts; no
// capacity limit). Covers the routing of Mixtral (softmax, top-k, renormalised), Qwen2-MoE
// (softmax, optional renormalisation, one shared expert gated by sigmoid(Linear(D -> 1))),
// Qwen3-MoE (Qwen2-MoE without shared expert) and DeepSeekMoE / DeepSeek-V3 (sigmoid scores,
// always-on shared experts, aux-loss-free balancing: a per-expert bias added to the scores for
// top-k SELECTION only, DeepSeek-V3 report sec. 2.1.2, updated by update_bias()).
// Weight names follow HF Qwen2-MoE: gate (router), experts.N.{gate,up,down}_proj, shared_expert.*,
// shared_expert_gate; the bias buffer is DeepSeek-V3's e_score_correction_bias.
#include <torch/torch.h>

#include "grpo/model/mlp.h"
#include "grpo/model/model_spec.h"
#include "grpo/model/op_impl.h"

namespace grpo::model {

/// What one MoE layer reports besides its output.
struct MoeStats {
  torch::Tensor load;          // [E] float32: top-k assignments per expert over valid tokens (as routed)
  torch::Tensor aux_tokens;    // [E] float32: assignments of the unbiased softmax top-k (for the aux loss)
  torch::Tensor aux_probs;     // [E] float32: sum of softmax(router logits) over valid tokens
  torch::Tensor valid_tokens;  // scalar float32: number of valid tokens
};

class MoeImpl : public torch::nn::Module {
 public:
  explicit MoeImpl(const ModelSpec& spec);
  /// x: [B, T, D]; valid: [B*T] float32 1/0 (undefined = all valid) -> ([B, T, D], stats).
  /// Padding tokens are routed too (their outputs are ignored downstream) but excluded from stats.
  std::pair<torch::Tensor, MoeStats> forward(const torch::Tensor& x, const torch::Tensor& valid);
  /// Aux-loss-free balancing step: bias += speed * sign(mean(load) - load), with `load` the
  /// assignments accumulated by training-mode forwards since the last call; then resets them.
  void update_bias(double speed);
  /// The assignments accumulated for the next update_bias ([E] float32). A data-parallel trainer
  /// sums it over ranks first, so that every rank moves its bias by the global load.
  torch::Tensor& pending_load() { return pending_load_; }

  torch::nn::Linear gate{nullptr};
  torch::nn::ModuleList experts{nullptr};
  Mlp shared_expert{nullptr};
  torch::nn::Linear shared_expert_gate{nullptr};
  torch::Tensor e_score_correction_bias;  // buffer [E], float32
  /// How the routed experts run (set by apply_kernels): PLAIN = one expert at a time over its
  /// slice of the expert-sorted assignments (reads the per-expert counts on the host: a device
  /// synchronisation per layer on CUDA); GRPO = grpo::moe_permute / moe_gather / three
  /// moe_grouped_gemm / moe_unpermute over all experts at once, counts kept on the device (no host
  /// synchronisation in forward or backward on CUDA). Both compute the same function.
  OpImpl impl = OpImpl::PLAIN;

 private:
  /// The routed experts' weighted sum. x: [N, D]; idx: [N, k] int64 expert ids; weights: [N, k]
  /// in x's dtype. Returns [N, D].
  torch::Tensor experts_loop(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& weights);
  torch::Tensor experts_grouped(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& weights);

  int64_t n_experts_, top_k_;
  bool norm_topk_, sigmoid_;
  torch::Tensor pending_load_;  // [E] float32, not saved
};
TORCH_MODULE(Moe);

}  // namespace grpo::model
