// Token logprobs + entropy from hidden states, chunked over the vocabulary (CPU reference, CUDA
// wrapper, autograd). Nothing of size [tokens, vocab] is ever allocated: each chunk's logits
// z = hidden @ W_c^T / T are folded into an online log-sum-exp state (m, s, t) per token,
//   s = sum exp(z - m), t = sum exp(z - m)(z - m),  lse = m + log s,  entropy = log s - t/s,
// and the backward recomputes each chunk's logits (as Liger's fused linear cross-entropy) with
//   d logp / dz = onehot(target) - p,   d entropy / dz = -p (z - E_p[z]),  E_p[z] = lse - entropy.
#include <limits>

#include "grpo/kernels/ops.h"
#include "op_util.h"

namespace grpo::kernels {
namespace {
using torch::Tensor;

void check_args(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                double temperature, int64_t chunk) {
  const char* op = "token_logprobs";
  detail::check_float(hidden, op, "hidden");
  detail::check_same(hidden, weight, op, "hidden", "weight");
  TORCH_CHECK(hidden.dim() == 2, "grpo::token_logprobs: hidden must be [tokens, d], got ",
              hidden.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(1) && weight.size(0) > 0,
              "grpo::token_logprobs: weight must be [vocab, ", hidden.size(1), "], got ",
              weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) &&
                  targets.scalar_type() == torch::kLong,
              "grpo::token_logprobs: targets must be int64 [", hidden.size(0), "], got ",
              targets.scalar_type(), " ", targets.sizes());
  TORCH_CHECK(targets.device() == hidden.device(),
              "grpo::token_logprobs: targets must be on hidden's device");
  TORCH_CHECK(temperature > 0, "grpo::token_logprobs: temperature must be > 0, got ", temperature);
  TORCH_CHECK(chunk >= 1, "grpo::token_logprobs: chunk_size must be >= 1, got ", chunk);
}

// ---- CPU reference ----

std::tuple<Tensor, Tensor, Tensor> fwd_cpu(const Tensor& hidden, const Tensor& weight,
                                           const Tensor& targets, double temperature,
                                           int64_t chunk) {
  check_args(hidden, weight, targets, temperature, chunk);
  const int64_t vocab = weight.size(0), n = hidden.size(0);
  if (n > 0) {
    TORCH_CHECK(targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < vocab,
                "grpo::token_logprobs: targets must lie in [0, ", vocab, ")");
  }
  const auto acc = detail::acc_type(hidden.scalar_type());
  const bool low = hidden.scalar_type() != acc;
  const double inv_t = 1.0 / temperature;
  Tensor m, s, t;
  Tensor zt = torch::empty({n}, hidden.options().dtype(acc));
  // Few full passes over each [n, c] chunk: these element-wise passes, not the product, are most of
  // a bf16 chunk's time, and they scale worse than the product to a second thread.
  for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, vocab - v0);
    const Tensor zr = torch::matmul(hidden, weight.narrow(0, v0, c).t());  // [n, c] input dtype
    const Tensor zf = low ? zr.to(acc) : zr;                                 // logits z = zf / T
    const Tensor mc = zf.amax(1) * inv_t;  // max z (rounding is monotone, T > 0)
    const Tensor d = torch::add(-mc.unsqueeze(1), zf, inv_t);  // z - max z, [n, c]
    const Tensor e = d.exp();
    const Tensor sc = e.sum(1), tc = torch::bmm(e.unsqueeze(1), d.unsqueeze(2)).view({n});
    const Tensor in = (targets >= v0) & (targets < v0 + c);
    const Tensor local = (targets - v0).clamp(0, c - 1).unsqueeze(1);
    zt = torch::where(in, zf.gather(1, local).squeeze(1) * inv_t, zt);
    if (v0 == 0) {
      m = mc, s = sc, t = tc;
    } else {
      const Tensor mn = torch::maximum(m, mc);
      const Tensor ar = (m - mn).exp(), ac = (mc - mn).exp();
      t = ar * (t + s * (m - mn)) + ac * (tc + sc * (mc - mn));
      s = s * ar + sc * ac;
      m = mn;
    }
  }
  const Tensor ls = s.log();
  const Tensor lse = m + ls;
  return {(zt - lse).to(torch::kFloat), (ls - t / s).to(torch::kFloat), lse};
}

std::tuple<Tensor, Tensor> bwd_cpu(const Tensor& grad_logp, const Tensor& grad_entropy,
                                   const Tensor& hidden, const Tensor& weight,
                                   const Tensor& targets, const Tensor& lse_,
                                   const Tensor& entropy_, double temperature, int64_t chunk) {
  const auto acc = detail::acc_type(hidden.scalar_type());
  const int64_t vocab = weight.size(0);
  const double inv_t = 1.0 / temperature;
  const Tensor lse = lse_.to(acc).unsqueeze(1), ez = lse - entropy_.to(acc).unsqueeze(1);
  const Tensor gl = grad_logp.to(acc), ge = grad_entropy.to(acc).unsqueeze(1);
  // dL/dz = gl (onehot - p) - ge p (z - ez) with z = zr / T, and dL/dzr = dL/dz / T:
  //   g = p * (a (z - ez) + b) + onehot * gl / T,   a = -ge / T,  b = -gl / T   ([n, 1] each)
  // in five passes over the [n, c] chunk; the one-hot term is added at the n targets only.
  const Tensor a = ge * -inv_t, b = gl.unsqueeze(1) * -inv_t, hit = gl * inv_t;
  // Reduced precision (bf16/fp16): the two gradient products run in the input dtype on the logits'
  // gradient rounded to it, as autocast's backward of a bf16 linear and the CUDA path do (a float32
  // product here cost more than the whole bf16 forward); float32 inputs: unchanged, all float32.
  const bool low = hidden.scalar_type() != acc;
  const Tensor h = low ? hidden : hidden.to(acc);
  Tensor gh = torch::zeros(hidden.sizes(), hidden.options().dtype(acc));
  Tensor gw = torch::empty_like(weight);
  for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, vocab - v0);
    const Tensor wc = weight.narrow(0, v0, c);
    const Tensor zr = torch::matmul(hidden, wc.t());  // [n, c] input dtype
    Tensor g = low ? zr.to(acc) : zr;                  // [n, c] acc, owned: overwritten below
    const Tensor p = torch::add(-lse, g, inv_t).exp_();
    torch::add_out(g, -ez, g, inv_t);   // z - ez
    torch::addcmul_out(g, b, a, g);     // a (z - ez) + b
    g.mul_(p);
    const Tensor rows = ((targets >= v0) & (targets < v0 + c)).nonzero().squeeze(1);
    if (rows.numel() > 0) {  // one target per row: (row, column) pairs are distinct
      const Tensor cols = targets.index({rows}) - v0;
      g.index_put_({rows, cols}, g.index({rows, cols}) + hit.index({rows}));
    }
    const Tensor gp = low ? g.to(hidden.scalar_type()) : g;
    gh.add_(torch::matmul(gp, low ? wc : wc.to(acc)));
    gw.narrow(0, v0, c).copy_(torch::matmul(gp.t(), h));
  }
  return {gh.to(hidden.scalar_type()), gw};
}

// ---- CUDA: cuBLAS GEMM per chunk + our fused online-LSE / gradient kernels ----
#ifdef GRPO_HAVE_CUDA_KERNELS
std::tuple<Tensor, Tensor, Tensor> fwd_cuda(const Tensor& hidden_, const Tensor& weight_,
                                            const Tensor& targets_, double temperature,
                                            int64_t chunk) {
  check_args(hidden_, weight_, targets_, temperature, chunk);
  const c10::cuda::CUDAGuard guard(hidden_.device());
  const auto dt = detail::cuda_dtype(hidden_, "_token_logprobs_fwd");
  const Tensor hidden = hidden_.contiguous(), weight = weight_.contiguous(),
               targets = targets_.contiguous();
  const int64_t vocab = weight.size(0), n = hidden.size(0);
  auto f32 = hidden.options().dtype(torch::kFloat);
  // s = 0 marks "no chunk seen yet"; zt = NaN makes an out-of-range target visible as NaN
  // instead of costing a host synchronisation to check.
  Tensor m = torch::empty({n}, f32), s = torch::zeros({n}, f32), t = torch::empty({n}, f32),
         zt = torch::full({n}, std::numeric_limits<float>::quiet_NaN(), f32);
  const float inv_t = static_cast<float>(1.0 / temperature);
  for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, vocab - v0);
    const Tensor z = torch::matmul(hidden, weight.narrow(0, v0, c).t());
    cuda::launch_lse_chunk_update(dt, z.data_ptr(), n, c, z.stride(0), v0,
                                  targets.data_ptr<int64_t>(), inv_t, m.data_ptr<float>(),
                                  s.data_ptr<float>(), t.data_ptr<float>(), zt.data_ptr<float>(),
                                  detail::stream());
  }
  Tensor logp = torch::empty({n}, f32), ent = torch::empty({n}, f32), lse = torch::empty({n}, f32);
  cuda::launch_lse_finalize(m.data_ptr<float>(), s.data_ptr<float>(), t.data_ptr<float>(),
                            zt.data_ptr<float>(), logp.data_ptr<float>(), ent.data_ptr<float>(),
                            lse.data_ptr<float>(), n, detail::stream());
  return {logp, ent, lse};
}

std::tuple<Tensor, Tensor> bwd_cuda(const Tensor& grad_logp, const Tensor& grad_entropy,
                                    const Tensor& hidden_, const Tensor& weight_,
                                    const Tensor& targets_, const Tensor& lse,
                                    const Tensor& entropy, double temperature, int64_t chunk) {
  const c10::cuda::CUDAGuard guard(hidden_.device());
  const auto dt = detail::cuda_dtype(hidden_, "_token_logprobs_bwd");
  const Tensor hidden = hidden_.contiguous(), weight = weight_.contiguous(),
               targets = targets_.contiguous();
  const Tensor gl = grad_logp.to(torch::kFloat).contiguous(),
               ge = grad_entropy.to(torch::kFloat).contiguous(),
               l = lse.to(torch::kFloat).contiguous(), e = entropy.to(torch::kFloat).contiguous();
  const int64_t vocab = weight.size(0), n = hidden.size(0);
  const float inv_t = static_cast<float>(1.0 / temperature);
  Tensor gh = torch::zeros({n, hidden.size(1)}, hidden.options().dtype(torch::kFloat));
  Tensor gw = torch::empty_like(weight);
  for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, vocab - v0);
    const Tensor wc = weight.narrow(0, v0, c);
    Tensor g = torch::matmul(hidden, wc.t());  // logits, turned into their gradient in place
    cuda::launch_logprob_chunk_grad(dt, g.data_ptr(), n, c, g.stride(0), v0,
                                    targets.data_ptr<int64_t>(), inv_t, l.data_ptr<float>(),
                                    e.data_ptr<float>(), gl.data_ptr<float>(),
                                    ge.data_ptr<float>(), detail::stream());
    gh.add_(torch::matmul(g, wc));
    gw.narrow(0, v0, c).copy_(torch::matmul(g.t(), hidden));
  }
  return {gh.to(hidden.scalar_type()), gw};
}
#endif

// ---- autograd ----

using FwdSig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                  double, int64_t);
using BwdSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, double, int64_t);

struct TokenLogprobsFn : torch::autograd::Function<TokenLogprobsFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const Tensor& hidden, const Tensor& weight,
                                                const Tensor& targets, double temperature,
                                                int64_t chunk) {
    static auto fwd = detail::op<FwdSig>("grpo::_token_logprobs_fwd");
    auto [logp, ent, lse] = fwd.call(hidden, weight, targets, temperature, chunk);
    ctx->save_for_backward({hidden, weight, targets, lse, ent});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    return {logp, ent};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto bwd = detail::op<BwdSig>("grpo::_token_logprobs_bwd");
    const auto s = ctx->get_saved_variables();
    const Tensor gl = grads[0].defined() ? grads[0] : torch::zeros_like(s[3]);
    const Tensor ge = grads[1].defined() ? grads[1] : torch::zeros_like(s[3]);
    auto [gh, gw] = bwd.call(gl, ge, s[0], s[1], s[2], s[3], s[4],
                             ctx->saved_data["temperature"].toDouble(),
                             ctx->saved_data["chunk"].toInt());
    return {gh, gw, Tensor(), Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor> token_logprobs_composite(const Tensor& hidden, const Tensor& weight,
                                                    const Tensor& targets, double temperature,
                                                    int64_t chunk) {
  auto out = TokenLogprobsFn::apply(hidden, weight, targets, temperature, chunk);
  return {out[0], out[1]};
}

}  // namespace

std::tuple<Tensor, Tensor> token_logprobs(const Tensor& hidden, const Tensor& weight,
                                          const Tensor& targets, double temperature,
                                          int64_t chunk_size) {
  static auto h = detail::op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                        const Tensor&, double, int64_t)>(
      "grpo::token_logprobs");
  return h.call(hidden, weight, targets, temperature, chunk_size);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("token_logprobs", &grpo::kernels::token_logprobs_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("_token_logprobs_fwd", &grpo::kernels::fwd_cpu);
  m.impl("_token_logprobs_bwd", &grpo::kernels::bwd_cpu);
}
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("_token_logprobs_fwd", &grpo::kernels::fwd_cuda);
  m.impl("_token_logprobs_bwd", &grpo::kernels::bwd_cuda);
}
#endif
