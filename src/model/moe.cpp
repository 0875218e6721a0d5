#include "grpo/model/moe.h"

#include <ATen/autocast_mode.h>

#include "grpo/kernels/ops.h"

namespace grpo::model {

MoeImpl::MoeImpl(const ModelSpec& s)
    : n_experts_(s.moe.num_experts),
      top_k_(s.moe.top_k),
      norm_topk_(s.moe.norm_topk_prob),
      sigmoid_(s.moe.scoring == config::RouterScoring::SIGMOID) {
  gate = register_module("gate", torch::nn::Linear(torch::nn::LinearOptions(s.hidden_size, n_experts_).bias(false)));
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < n_experts_; ++e) experts->push_back(Mlp(s.hidden_size, s.moe.moe_intermediate_size));
  if (s.moe.n_shared_experts > 0)
    shared_expert = register_module("shared_expert", Mlp(s.hidden_size, s.moe.shared_intermediate_size));
  if (s.moe.shared_expert_gate)
    shared_expert_gate =
        register_module("shared_expert_gate", torch::nn::Linear(torch::nn::LinearOptions(s.hidden_size, 1).bias(false)));
  e_score_correction_bias = register_buffer("e_score_correction_bias", torch::zeros({n_experts_}));
  pending_load_ = torch::zeros({n_experts_});
}

namespace {

// The router's logits [N, E] float32 of x [N, D].
torch::Tensor router_logits(torch::nn::Linear& gate, const torch::Tensor& x) {
  if (gate->weight.scalar_type() != torch::kFloat32) return gate(x).to(torch::kFloat32);
  // Selective precision (Switch Transformers, Fedus et al. 2021, sec. 2.4: the router input cast
  // to float32; Megatron's moe_router_dtype fp32):
  // under trainer.bf16's autocast the router's product stays float32, so that close experts are
  // not tied by bf16 rounding of their logits and the routing and aux-loss gradients are exact.
  // A float32 model without autocast runs the same op as before.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  return gate(x.to(torch::kFloat32));
}

}  // namespace

std::pair<torch::Tensor, MoeStats> MoeImpl::forward(const torch::Tensor& x_in, const torch::Tensor& valid_in) {
  const auto shape = x_in.sizes().vec();
  auto x = x_in.reshape({-1, shape.back()});
  const int64_t N = x.size(0);
  auto logits = router_logits(gate, x);  // [N, E] float32
  auto probs = torch::softmax(logits, -1);
  auto scores = sigmoid_ ? torch::sigmoid(logits) : probs;
  auto bias = e_score_correction_bias.to(torch::kFloat32);
  auto idx = std::get<1>(torch::topk(scores + bias.unsqueeze(0), top_k_, -1));  // [N, k]
  auto weights = scores.gather(1, idx);
  if (norm_topk_) weights = weights / weights.sum(-1, true);
  weights = weights.to(x.scalar_type());

  auto out = impl == OpImpl::GRPO ? experts_grouped(x, idx, weights) : experts_loop(x, idx, weights);
  if (shared_expert) {
    auto sh = shared_expert(x);
    if (shared_expert_gate) sh = torch::sigmoid(shared_expert_gate(x)) * sh;
    out = out + sh;
  }

  MoeStats st;
  {
    torch::NoGradGuard ng;
    auto valid = valid_in.defined() ? valid_in.to(torch::kFloat32).reshape({N}) : torch::ones({N}, probs.options());
    // expand, not repeat_interleave: no repeats tensor, nothing for the device to report back.
    auto vk = valid.unsqueeze(1).expand({N, top_k_}).reshape(-1);
    st.load = torch::zeros({n_experts_}, probs.options()).scatter_add_(0, idx.reshape(-1), vk);
    auto aux_idx = std::get<1>(torch::topk(probs, top_k_, -1)).reshape(-1);
    st.aux_tokens = torch::zeros({n_experts_}, probs.options()).scatter_add_(0, aux_idx, vk);
    st.valid_tokens = valid.sum();
    if (is_training()) pending_load_ = pending_load_.to(st.load.device()) + st.load;
  }
  auto valid = valid_in.defined() ? valid_in.to(torch::kFloat32).reshape({N, 1}) : torch::ones({N, 1}, probs.options());
  st.aux_probs = (probs * valid).sum(0);  // differentiable: the aux loss trains the router through it
  return {out.view(shape), st};
}

torch::Tensor MoeImpl::experts_loop(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& weights) {
  // Dropless dispatch: sort the N*k assignments by expert, run each expert on its contiguous slice.
  auto flat = idx.reshape(-1);
  auto order = flat.argsort(/*stable=*/true);
  auto counts = torch::bincount(flat, {}, n_experts_).cpu();  // the host needs the slice lengths
  auto token_of = order.div(top_k_, "floor");
  auto w_sorted = weights.reshape(-1).index_select(0, order);
  auto out = torch::zeros_like(x);
  const auto* cnt = counts.data_ptr<int64_t>();
  int64_t offset = 0;
  for (int64_t e = 0; e < n_experts_; ++e) {
    const int64_t c = cnt[e];
    if (c == 0) continue;
    auto tok = token_of.narrow(0, offset, c);
    auto y = experts->at<MlpImpl>(e).forward(x.index_select(0, tok)) * w_sorted.narrow(0, offset, c).unsqueeze(1);
    out.index_add_(0, tok, y);
    offset += c;
  }
  return out;
}

torch::Tensor MoeImpl::experts_grouped(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& weights) {
  // The experts' weights stacked per forward ([E, I, D] / [E, D, I], nn.Linear layout): the
  // parameters stay one Linear per expert (HF names, checkpoints), autograd splits the gradient.
  std::vector<torch::Tensor> gate_w, up_w, down_w;
  for (int64_t e = 0; e < n_experts_; ++e) {
    auto& m = experts->at<MlpImpl>(e);
    gate_w.push_back(m.gate_proj->weight);
    up_w.push_back(m.up_proj->weight);
    down_w.push_back(m.down_proj->weight);
  }
  const auto& first = experts->at<MlpImpl>(0);
  // The grouped GEMM is bf16/fp32 only: FP8 experts run the loop (apply_kernels sets that).
  TORCH_CHECK(first.linear_impl == LinearImpl::PLAIN, "MoE: FP8 experts have no grouped path; use impl PLAIN");
  const bool fused_swiglu = first.impl == OpImpl::GRPO;
  // Under autocast (trainer.bf16) the experts' nn::Linear would compute in the autocast dtype; the
  // grpo:: ops are not autocast-aware, so cast here (bf16 also takes the tensor-core kernel).
  const auto dev_type = x.device().type();
  const auto dt = at::autocast::is_autocast_enabled(dev_type) ? at::autocast::get_autocast_dtype(dev_type)
                                                              : x.scalar_type();
  auto stacked = [&](const std::vector<torch::Tensor>& ws) { return torch::stack(ws).to(dt); };
  const auto routing = kernels::moe_permute(idx, n_experts_);  // offsets stay on the device
  auto xs = kernels::moe_gather(x.to(dt), routing, top_k_);     // [N*k, D], expert order
  auto up = kernels::moe_grouped_gemm(xs, stacked(up_w), routing);      // [N*k, I]
  auto gate = kernels::moe_grouped_gemm(xs, stacked(gate_w), routing);  // [N*k, I]
  auto h = fused_swiglu ? kernels::swiglu(gate, up) : torch::silu(gate) * up;
  auto y = kernels::moe_grouped_gemm(h, stacked(down_w), routing);  // [N*k, D]
  return kernels::moe_unpermute(y, routing, weights).to(x.scalar_type());  // [N, D]
}

void MoeImpl::update_bias(double speed) {
  torch::NoGradGuard ng;
  auto load = pending_load_.to(e_score_correction_bias.device());
  auto delta = torch::sign(load.mean() - load) * speed;
  e_score_correction_bias.add_(delta.to(e_score_correction_bias.scalar_type()));
  pending_load_ = torch::zeros_like(pending_load_);
}

}  // namespace grpo::model
