#include "grpo/model/block_recompute.h"

#include <ATen/autocast_mode.h>

#include <string>

namespace grpo::model {
namespace {

constexpr at::DeviceType kAutocastKinds[2] = {at::kCPU, at::kCUDA};

}  // namespace

AutocastState AutocastState::current() {
  AutocastState s{};
  for (int i = 0; i < 2; ++i)
    s.enabled[i] = at::autocast::is_autocast_enabled(kAutocastKinds[i]),
    s.dtype[i] = at::autocast::get_autocast_dtype(kAutocastKinds[i]);
  return s;
}

void AutocastState::apply() const {
  for (int i = 0; i < 2; ++i)
    at::autocast::set_autocast_enabled(kAutocastKinds[i], enabled[i]),
        at::autocast::set_autocast_dtype(kAutocastKinds[i], dtype[i]);
}

void AutocastState::save(torch::autograd::AutogradContext* ctx) const {
  for (int i = 0; i < 2; ++i) {
    ctx->saved_data["ac_on" + std::to_string(i)] = enabled[i];
    ctx->saved_data["ac_dtype" + std::to_string(i)] = static_cast<int64_t>(dtype[i]);
  }
}

AutocastState AutocastState::load(torch::autograd::AutogradContext* ctx) {
  AutocastState s{};
  for (int i = 0; i < 2; ++i) {
    s.enabled[i] = ctx->saved_data["ac_on" + std::to_string(i)].toBool();
    s.dtype[i] = static_cast<at::ScalarType>(ctx->saved_data["ac_dtype" + std::to_string(i)].toInt());
  }
  return s;
}

RecomputedBlock recompute_block(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& valid,
                                const AutocastState& autocast, const torch::autograd::variable_list& grads) {
  // The recomputation is a training-mode forward: keep the MoE load it would add a second time out.
  torch::Tensor pending;
  if (block.moe) pending = block.moe->pending_load().clone();
  RecomputedBlock r;
  {
    torch::AutoGradMode on(true);
    const auto outer = AutocastState::current();
    autocast.apply();
    at::autocast::increment_nesting();  // its weight casts are dropped right after (stale after the optimizer step)
    auto [y, st] = block.forward(x, cos, sin, mask, nullptr, valid);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    outer.apply();
    r.outputs.push_back(y);
    r.grads.push_back(grads[0].defined() ? grads[0] : torch::zeros_like(y));
    if (st && grads.size() > 3 && grads[3].defined() && st->aux_probs.requires_grad()) {
      r.outputs.push_back(st->aux_probs);
      r.grads.push_back(grads[3]);
    }
  }
  if (block.moe) block.moe->pending_load() = pending;
  return r;
}

}  // namespace grpo::model
