#include "checkpointed_block.h"

#include "grpo/model/block_recompute.h"

namespace grpo::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
    auto r = recompute_block(*block, x, saved[1], saved[2], saved[3], valid, AutocastState::load(ctx), grads);
    // Reentrant backward: accumulates into the block's parameters and into x (a fresh leaf).
    torch::autograd::backward(r.outputs, r.grads);
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
