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

#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The autocast state of CPU and CUDA: the recomputation in backward runs in the precision of the
// forward (as checkpointed_block.cpp and torch.utils.checkpoint do).
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
};

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
    for (int i = 0; i < 2; ++i) {
      ctx->saved_data["ac_on" + std::to_string(i)] = autocast.enabled[i];
      ctx->saved_data["ac_dtype" + std::to_string(i)] = static_cast<int64_t>(autocast.dtype[i]);
    }
  }
  static Context load(AutogradContext* ctx) {
    Context c{};
    c.sharder = reinterpret_cast<Sharder*>(ctx->saved_data["sharder"].toInt());
    c.block = reinterpret_cast<model::BlockImpl*>(ctx->saved_data["block"].toInt());
    c.layer = static_cast<size_t>(ctx->saved_data["layer"].toInt());
    c.unit = static_cast<int>(ctx->saved_data["unit"].toInt());
    c.x_requires_grad = ctx->saved_data["xrg"].toBool();
    c.has_valid = ctx->saved_data["valid"].toBool();
    for (int i = 0; i < 2; ++i) {
      c.autocast.enabled[i] = ctx->saved_data["ac_on" + std::to_string(i)].toBool();
      c.autocast.dtype[i] = static_cast<at::ScalarType>(ctx->saved_data["ac_dtype" + std::to_string(i)].toInt());
    }
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
    // The recomputation is a training-mode forward: keep the MoE load it would add a second time out.
    torch::Tensor pending;
    if (c->block->moe) pending = c->block->moe->pending_load().clone();
    std::vector<torch::Tensor> outs, gouts;
    auto params = s.unit_params(c->unit);
    std::vector<torch::Tensor> inputs = params;
    if (c->x_requires_grad) inputs.push_back(x);
    variable_list got;
    {
      torch::AutoGradMode on(true);
      const auto outer = AutocastState::current();
      c->autocast.apply();
      at::autocast::increment_nesting();  // its weight casts are dropped right after
      auto [y, st] = c->block->forward(x, saved[1], saved[2], saved[3], nullptr, valid);
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      outer.apply();
      outs.push_back(y);
      gouts.push_back(grads[0].defined() ? grads[0] : torch::zeros_like(y));
      if (st && grads.size() > 3 && grads[3].defined() && st->aux_probs.requires_grad()) {
        outs.push_back(st->aux_probs);
        gouts.push_back(grads[3]);
      }
      got = torch::autograd::grad(outs, inputs, gouts, /*retain_graph=*/false, /*create_graph=*/false,
                                  /*allow_unused=*/true);
    }
    if (c->block->moe) c->block->moe->pending_load() = pending;
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
      // training forward or optimizer step (Sharder::keep_for_inference).
      if (!sharder->is_whole(unit)) sharder->materialize(unit), sharder->keep_for_inference(unit);
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
