// Sharding `full`: a decoder block whose parameters exist whole only around its own forward and
// backward.
//
// Why an autograd Function that recomputes the block in backward (the cost of one more forward
// per block, as trainer.gradient_checkpointing) instead of FSDP1's trick of keeping the autograd
// graph and re-materialising the freed parameter storages before backward: LibTorch C++ has no
// supported way to resize a saved tensor's storage to zero and back, and a graph kept across the
// block would pin the gathered weights through its saved tensors. Recomputing also drops the
// block's activations (gradient checkpointing comes for free). verl and OpenRLHF run FSDP with
// gradient checkpointing on by default, so the recompute is the usual configuration there too.
#include "sharded_block.h"

#include <ATen/autocast_mode.h>

#include "grpo/model/block_recompute.h"
#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using model::AutocastState;

// What backward needs besides the saved tensors (kept in the graph node's saved_data).
struct Context {
  Sharder* sharder;
  model::BlockImpl* block;  // owned by the model, outlives the graph
  size_t layer;
  int unit;
  AutocastState autocast;
  bool x_requires_grad, has_valid;

  void save(AutogradContext* ctx) const {
    ctx->saved_data["sharder"] = reinterpret_cast<int64_t>(sharder);
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["layer"] = static_cast<int64_t>(layer);
    ctx->saved_data["unit"] = static_cast<int64_t>(unit);
    ctx->saved_data["xrg"] = x_requires_grad;
    ctx->saved_data["valid"] = has_valid;
    autocast.save(ctx);
  }
  static Context load(AutogradContext* ctx) {
    Context c{};
    c.sharder = reinterpret_cast<Sharder*>(ctx->saved_data["sharder"].toInt());
    c.block = reinterpret_cast<model::BlockImpl*>(ctx->saved_data["block"].toInt());
    c.layer = static_cast<size_t>(ctx->saved_data["layer"].toInt());
    c.unit = static_cast<int>(ctx->saved_data["unit"].toInt());
    c.x_requires_grad = ctx->saved_data["xrg"].toBool();
    c.has_valid = ctx->saved_data["valid"].toBool();
    c.autocast = AutocastState::load(ctx);
    return c;
  }
};

int neighbour(const Sharder& s, size_t layer, int delta) {
  if (delta < 0 && layer == 0) return -1;
  return s.block_unit(layer + static_cast<size_t>(static_cast<int64_t>(delta)));
}

// Outputs: {y} for a dense block, {y, load, aux_tokens, aux_probs, valid_tokens} for a MoE block.
struct ShardedBlock : torch::autograd::Function<ShardedBlock> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& valid,
                               const torch::Tensor& shard, Context cv) {
    const Context* c = &cv;
    // Function::apply runs this with grad mode off: no graph, the gathered weights are not saved.
    (void)shard;  // an input only so that backward can return its gradient (the reduce-scattered slice)
    auto& s = *c->sharder;
    s.materialize(c->unit);
    if (s.options().forward_prefetch)
      if (int next = neighbour(s, c->layer, +1); next >= 0) s.prefetch(next);
    auto [y, st] = c->block->forward(x, cos, sin, mask, nullptr, valid);
    if (s.options().reshard_after_forward) s.release(c->unit);
    cv.save(ctx);
    ctx->save_for_backward({x, cos, sin, mask, valid.defined() ? valid : torch::Tensor()});
    if (!st) return {y};
    ctx->mark_non_differentiable({st->load, st->aux_tokens, st->valid_tokens});
    return {y, st->load, st->aux_tokens, st->aux_probs, st->valid_tokens};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Context cv = Context::load(ctx);
    const Context* c = &cv;
    auto& s = *c->sharder;
    auto saved = ctx->get_saved_variables();
    s.materialize(c->unit);
    if (s.options().backward_prefetch)
      if (int prev = neighbour(s, c->layer, -1); prev >= 0) s.prefetch(prev);
    auto x = saved[0].detach().requires_grad_(c->x_requires_grad);
    torch::Tensor valid = c->has_valid ? saved[4] : torch::Tensor();
    auto params = s.unit_params(c->unit);
    std::vector<torch::Tensor> inputs = params;
    if (c->x_requires_grad) inputs.push_back(x);
    auto r = model::recompute_block(*c->block, x, saved[1], saved[2], saved[3], valid, c->autocast, grads);
    variable_list got = torch::autograd::grad(r.outputs, inputs, r.grads, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true);
    torch::Tensor gx = c->x_requires_grad ? got.back() : torch::Tensor();
    got.resize(params.size());
    auto gshard = s.reduce_scatter_block(c->unit, std::move(got));
    s.release(c->unit);
    // One gradient per forward argument: x, cos, sin, mask, valid, shard, context.
    return {gx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), gshard, torch::Tensor()};
  }
};

}  // namespace

model::TransformerImpl::BlockRunner make_sharded_block_runner(Sharder* sharder) {
  return [sharder](size_t layer, model::BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                   const torch::Tensor& sin, const torch::Tensor& mask, model::KVCache* cache,
                   const torch::Tensor& valid) -> std::pair<torch::Tensor, std::optional<model::MoeStats>> {
    const int unit = sharder->block_unit(layer);
    if (unit < 0) return block.forward(x, cos, sin, mask, cache, valid);  // nothing trainable in it
    if (cache || !torch::GradMode::is_enabled()) {
      // Generation, old-policy log-probs, evaluation: gathered once, kept until the next
      // training forward or optimizer step (Sharder::keep_for_inference). Under bf16 autocast
      // with the bf16 all-gather the kept copy is bf16 (verl's hybrid engine: one bf16 copy while
      // generating); a forward outside autocast needs float32 weights: it gathers them again.
      const bool low = sharder->options().bf16_gather && at::autocast::is_autocast_enabled(x.device().type()) &&
                       at::autocast::get_autocast_dtype(x.device().type()) == at::kBFloat16;
      if (sharder->is_whole(unit) && sharder->is_low_precision(unit) && !low) sharder->release(unit);
      if (!sharder->is_whole(unit)) sharder->materialize(unit, low), sharder->keep_for_inference(unit);
      return block.forward(x, cos, sin, mask, cache, valid);
    }
    sharder->release_inference();
    Context c{sharder, &block, layer, unit, AutocastState::current(), x.requires_grad(), valid.defined()};
    auto out = ShardedBlock::apply(x, cos, sin, mask, valid, sharder->block_shard(unit), c);
    if (out.size() == 1) return {out[0], std::nullopt};
    model::MoeStats st;
    st.load = out[1];
    st.aux_tokens = out[2];
    st.aux_probs = out[3];
    st.valid_tokens = out[4];
    return {out[0], st};
  };
}

}  // namespace grpo::dist
