#include "checkpointed_block.h"

#include <ATen/autocast_mode.h>

namespace grpo::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The autocast state of CPU and CUDA: the recomputation must run in the precision of the forward
// (backward runs after the trainer's autocast scope has ended), as torch.utils.checkpoint does.
struct AutocastState {
  bool enabled[2];
  at::ScalarType dtype[2];
  static constexpr at::DeviceType kinds[2] = {at::kCPU, at::kCUDA};
  static AutocastState current() {
    AutocastState s{};
    for (int i = 0; i < 2; ++i)
      s.enabled[i] = at::autocast::is_autocast_enabled(kinds[i]), s.dtype[i] = at::autocast::get_autocast_dtype(kinds[i]);
    return s;
  }
  void apply() const {
    for (int i = 0; i < 2; ++i)
      at::autocast::set_autocast_enabled(kinds[i], enabled[i]), at::autocast::set_autocast_dtype(kinds[i], dtype[i]);
  }
  void save(AutogradContext* ctx) const {
    for (int i = 0; i < 2; ++i) {
      ctx->saved_data["ac_on" + std::to_string(i)] = enabled[i];
      ctx->saved_data["ac_dtype" + std::to_string(i)] = static_cast<int64_t>(dtype[i]);
    }
  }
  static AutocastState load(AutogradContext* ctx) {
    AutocastState s{};
    for (int i = 0; i < 2; ++i) {
      s.enabled[i] = ctx->saved_data["ac_on" + std::to_string(i)].toBool();
      s.dtype[i] = static_cast<at::ScalarType>(ctx->saved_data["ac_dtype" + std::to_string(i)].toInt());
    }
    return s;
  }
};

// Outputs: {y} for a dense block, {y, load, aux_tokens, aux_probs, valid_tokens} for a MoE block.
struct BlockCheckpoint : torch::autograd::Function<BlockCheckpoint> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& valid,
                               BlockImpl* block) {
    // Function::apply runs this with grad mode off: no graph, no stored activations.
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);  // owned by the model, outlives the graph
    ctx->saved_data["has_valid"] = valid.defined();
    AutocastState::current().save(ctx);
    ctx->save_for_backward({x, cos, sin, mask, valid.defined() ? valid : torch::Tensor()});
    auto [y, st] = block->forward(x, cos, sin, mask, nullptr, valid);
    if (!st) return {y};
    ctx->mark_non_differentiable({st->load, st->aux_tokens, st->valid_tokens});
    return {y, st->load, st->aux_tokens, st->aux_probs, st->valid_tokens};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto* block = reinterpret_cast<BlockImpl*>(ctx->saved_data["block"].toInt());
    auto x = saved[0].detach().requires_grad_(true);
    torch::Tensor valid = ctx->saved_data["has_valid"].toBool() ? saved[4] : torch::Tensor();
    // The recomputation is a training-mode forward: keep the MoE load it would add a second time out.
    torch::Tensor pending;
    if (block->moe) pending = block->moe->pending_load().clone();
    std::vector<torch::Tensor> outs, gouts;
    {
      torch::AutoGradMode on(true);
      const auto outer = AutocastState::current();
      AutocastState::load(ctx).apply();
      at::autocast::increment_nesting();  // its weight casts are dropped right after (stale after the optimizer step)
      auto [y, st] = block->forward(x, saved[1], saved[2], saved[3], nullptr, valid);
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      outer.apply();
      outs.push_back(y);
      gouts.push_back(grads[0].defined() ? grads[0] : torch::zeros_like(y));
      if (st && grads.size() > 3 && grads[3].defined() && st->aux_probs.requires_grad()) {
        outs.push_back(st->aux_probs);
        gouts.push_back(grads[3]);
      }
    }
    if (block->moe) block->moe->pending_load() = pending;
    // Reentrant backward: accumulates into the block's parameters and into x (a fresh leaf).
    torch::autograd::backward(outs, gouts);
    // One gradient per forward argument: x, cos, sin, mask, valid, block.
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, std::optional<MoeStats>> checkpointed_block_forward(BlockImpl& block, const torch::Tensor& x,
                                                                             const torch::Tensor& cos,
                                                                             const torch::Tensor& sin,
                                                                             const torch::Tensor& mask,
                                                                             const torch::Tensor& valid) {
  auto out = BlockCheckpoint::apply(x, cos, sin, mask, valid, &block);
  if (out.size() == 1) return {out[0], std::nullopt};
  MoeStats st;
  st.load = out[1];
  st.aux_tokens = out[2];
  st.aux_probs = out[3];
  st.valid_tokens = out[4];
  return {out[0], st};
}

}  // namespace grpo::model
