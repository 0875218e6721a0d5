// Mixture-of-experts dispatch: permutation by expert, gather, grouped GEMM, router-weighted
// unpermutation (CPU reference, CUDA wrappers, autograd). The backward of each step is another
// step: gather <-> unpermute (weights 1), grouped GEMM -> grouped GEMM with w untransposed plus a
// grouped weight-gradient GEMM, and the router gradient is a per-slot dot product.
#include "grpo/kernels/ops.h"
#include "op_util.h"

namespace grpo::kernels {
namespace {
using torch::Tensor;
using OptTensor = std::optional<Tensor>;

// Router weights as a flat [M] vector: float32 for the kernels, the accumulation dtype on CPU.
Tensor flat_weights(const OptTensor& w, torch::ScalarType dt = torch::kFloat) {
  return (w && w->defined()) ? w->to(dt).contiguous().reshape({-1}) : Tensor();
}

// ---- CPU reference ----

std::tuple<Tensor, Tensor, Tensor> permute_cpu(const Tensor& ids, int64_t num_experts) {
  TORCH_CHECK(ids.scalar_type() == torch::kLong || ids.scalar_type() == torch::kInt,
              "grpo::moe_permute: expert_ids must be int64 or int32, got ", ids.scalar_type());
  TORCH_CHECK(num_experts >= 1, "grpo::moe_permute: num_experts must be >= 1, got ", num_experts);
  const Tensor flat = ids.reshape({-1}).to(torch::kLong);
  if (flat.numel() > 0) {
    const int64_t lo = flat.min().item<int64_t>(), hi = flat.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < num_experts, "grpo::moe_permute: expert ids must lie in [0, ",
                num_experts, "), got [", lo, ", ", hi, "]");
  }
  const Tensor sorted = std::get<1>(torch::sort(flat, /*stable=*/true, /*dim=*/0, false));
  Tensor rows = torch::empty_like(sorted);
  rows.index_put_({sorted}, torch::arange(flat.numel(), flat.options()));
  const Tensor counts = torch::bincount(flat, {}, num_experts);
  const Tensor offsets = torch::cat({torch::zeros({1}, flat.options()), counts.cumsum(0)});
  return {sorted, rows, offsets};
}

Tensor gather_cpu(const Tensor& x, const Tensor& sorted_slots, int64_t topk, const OptTensor& w) {
  detail::check_float(x, "moe_gather", "x");
  TORCH_CHECK(x.dim() == 2 && sorted_slots.numel() == x.size(0) * topk,
              "grpo::moe_gather: x must be [tokens, d] with tokens * topk = ", sorted_slots.numel(),
              " slots, got ", x.sizes(), " and topk ", topk);
  const auto acc = detail::acc_type(x.scalar_type());
  Tensor out = x.index_select(0, torch::floor_divide(sorted_slots, topk)).to(acc);
  const Tensor wf = flat_weights(w, acc);
  if (wf.defined()) out = out * wf.index_select(0, sorted_slots).to(acc).unsqueeze(1);
  return out.to(x.scalar_type());
}

Tensor unpermute_cpu(const Tensor& y, const Tensor& slot_rows, int64_t topk, const OptTensor& w) {
  detail::check_float(y, "moe_unpermute", "y");
  TORCH_CHECK(y.dim() == 2 && y.size(0) == slot_rows.numel() && topk >= 1 &&
                  slot_rows.numel() % topk == 0,
              "grpo::moe_unpermute: y must be [tokens * topk, d] with ", slot_rows.numel(),
              " rows, got ", y.sizes());
  const auto acc = detail::acc_type(y.scalar_type());
  const int64_t tokens = slot_rows.numel() / topk;
  Tensor yy = y.index_select(0, slot_rows).to(acc).view({tokens, topk, y.size(1)});
  const Tensor wf = flat_weights(w, acc);
  if (wf.defined()) yy = yy * wf.to(acc).view({tokens, topk, 1});
  return yy.sum(1).to(y.scalar_type());
}

Tensor router_grad_cpu(const Tensor& y, const Tensor& slot_rows, const Tensor& grad_out,
                       int64_t topk) {
  const auto acc = detail::acc_type(y.scalar_type());
  const int64_t tokens = slot_rows.numel() / topk;
  const Tensor yy = y.index_select(0, slot_rows).to(acc).view({tokens, topk, y.size(1)});
  return (yy * grad_out.to(acc).unsqueeze(1)).sum(-1).reshape({-1});
}

void check_gemm(const Tensor& x, const Tensor& w, const Tensor& offsets, bool trans_w) {
  detail::check_float(x, "moe_grouped_gemm", "x");
  detail::check_same(x, w, "moe_grouped_gemm", "x", "weight");
  TORCH_CHECK(x.dim() == 2 && w.dim() == 3 && x.size(1) == (trans_w ? w.size(2) : w.size(1)),
              "grpo::moe_grouped_gemm: x must be [M, K] and weight [E, N, K], got ", x.sizes(),
              " and ", w.sizes());
  TORCH_CHECK(offsets.dim() == 1 && offsets.numel() == w.size(0) + 1 &&
                  offsets.scalar_type() == torch::kLong,
              "grpo::moe_grouped_gemm: offsets must be int64 [", w.size(0) + 1, "], got ",
              offsets.sizes());
}

Tensor gemm_cpu(const Tensor& x, const Tensor& w, const Tensor& offsets, bool trans_w) {
  check_gemm(x, w, offsets, trans_w);
  const auto acc = detail::acc_type(x.scalar_type());
  const int64_t cols = trans_w ? w.size(1) : w.size(2);
  TORCH_CHECK(offsets[-1].item<int64_t>() == x.size(0), "grpo::moe_grouped_gemm: offsets end at ",
              offsets[-1].item<int64_t>(), " but x has ", x.size(0), " rows");
  Tensor out = torch::empty({x.size(0), cols}, x.options());
  for (int64_t e = 0; e < w.size(0); ++e) {
    const int64_t b = offsets[e].item<int64_t>(), n = offsets[e + 1].item<int64_t>() - b;
    if (n == 0) continue;
    const Tensor we = w[e].to(acc);
    out.narrow(0, b, n).copy_(torch::matmul(x.narrow(0, b, n).to(acc), trans_w ? we.t() : we));
  }
  return out;
}

Tensor wgrad_cpu(const Tensor& gy, const Tensor& x, const Tensor& offsets, int64_t num_experts) {
  const auto acc = detail::acc_type(x.scalar_type());
  Tensor gw = torch::zeros({num_experts, gy.size(1), x.size(1)}, x.options().dtype(acc));
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t b = offsets[e].item<int64_t>(), n = offsets[e + 1].item<int64_t>() - b;
    if (n == 0) continue;
    gw[e].copy_(torch::matmul(gy.narrow(0, b, n).to(acc).t(), x.narrow(0, b, n).to(acc)));
  }
  return gw.to(x.scalar_type());
}

// ---- CUDA ----
#ifdef GRPO_HAVE_CUDA_KERNELS
std::tuple<Tensor, Tensor, Tensor> permute_cuda(const Tensor& ids, int64_t num_experts) {
  TORCH_CHECK(ids.scalar_type() == torch::kLong || ids.scalar_type() == torch::kInt,
              "grpo::moe_permute: expert_ids must be int64 or int32, got ", ids.scalar_type());
  TORCH_CHECK(num_experts >= 1, "grpo::moe_permute: num_experts must be >= 1, got ", num_experts);
  const c10::cuda::CUDAGuard guard(ids.device());
  const Tensor flat = ids.reshape({-1}).to(torch::kLong).contiguous();
  const int64_t m = flat.numel();
  Tensor sorted = torch::empty({m}, flat.options()), rows = torch::empty({m}, flat.options()),
         offsets = torch::empty({num_experts + 1}, flat.options()),
         ws = torch::empty({cuda::moe_permute_workspace_ints(m, num_experts)}, flat.options());
  cuda::launch_moe_permute(flat.data_ptr<int64_t>(), m, num_experts, sorted.data_ptr<int64_t>(),
                           rows.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(),
                           ws.data_ptr<int64_t>(), detail::stream());
  return {sorted, rows, offsets};
}

Tensor gather_cuda(const Tensor& x_, const Tensor& sorted_, int64_t topk, const OptTensor& w) {
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto dt = detail::cuda_dtype(x_, "moe_gather");
  TORCH_CHECK(x_.dim() == 2 && sorted_.numel() == x_.size(0) * topk,
              "grpo::moe_gather: x must be [tokens, d] with tokens * topk = ", sorted_.numel(),
              " slots, got ", x_.sizes(), " and topk ", topk);
  const Tensor x = x_.contiguous(), sorted = sorted_.contiguous(), wf = flat_weights(w);
  Tensor out = torch::empty({sorted.numel(), x.size(1)}, x.options());
  cuda::launch_moe_gather(dt, x.data_ptr(), sorted.data_ptr<int64_t>(),
                          wf.defined() ? wf.data_ptr<float>() : nullptr, out.data_ptr(),
                          sorted.numel(), x.size(1), topk, detail::stream());
  return out;
}

Tensor unpermute_cuda(const Tensor& y_, const Tensor& rows_, int64_t topk, const OptTensor& w) {
  const c10::cuda::CUDAGuard guard(y_.device());
  const auto dt = detail::cuda_dtype(y_, "moe_unpermute");
  TORCH_CHECK(y_.dim() == 2 && y_.size(0) == rows_.numel() && topk >= 1 && rows_.numel() % topk == 0,
              "grpo::moe_unpermute: y must be [tokens * topk, d] with ", rows_.numel(),
              " rows, got ", y_.sizes());
  const Tensor y = y_.contiguous(), rows = rows_.contiguous(), wf = flat_weights(w);
  const int64_t tokens = rows.numel() / topk;
  Tensor out = torch::empty({tokens, y.size(1)}, y.options());
  cuda::launch_moe_unpermute(dt, y.data_ptr(), rows.data_ptr<int64_t>(),
                             wf.defined() ? wf.data_ptr<float>() : nullptr, out.data_ptr(), tokens,
                             y.size(1), topk, detail::stream());
  return out;
}

Tensor router_grad_cuda(const Tensor& y_, const Tensor& rows_, const Tensor& g_, int64_t topk) {
  const c10::cuda::CUDAGuard guard(y_.device());
  const auto dt = detail::cuda_dtype(y_, "moe_unpermute");
  const Tensor y = y_.contiguous(), rows = rows_.contiguous(),
               g = g_.to(y.scalar_type()).contiguous();
  Tensor out = torch::empty({rows.numel()}, y.options().dtype(torch::kFloat));
  cuda::launch_moe_router_grad(dt, y.data_ptr(), rows.data_ptr<int64_t>(), g.data_ptr(),
                               out.data_ptr<float>(), rows.numel(), y.size(1), topk,
                               detail::stream());
  return out;
}

Tensor gemm_cuda(const Tensor& x_, const Tensor& w_, const Tensor& offsets_, bool trans_w) {
  check_gemm(x_, w_, offsets_, trans_w);
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto dt = detail::cuda_dtype(x_, "moe_grouped_gemm");
  const Tensor x = x_.contiguous(), w = w_.contiguous(), offsets = offsets_.contiguous();
  const int64_t cols = trans_w ? w.size(1) : w.size(2), red = x.size(1);
  Tensor out = torch::empty({x.size(0), cols}, x.options());
  cuda::launch_moe_grouped_gemm(dt, x.data_ptr(), w.data_ptr(), offsets.data_ptr<int64_t>(),
                                out.data_ptr(), x.size(0), cols, red, w.size(0), trans_w,
                                detail::stream());
  return out;
}

Tensor wgrad_cuda(const Tensor& gy_, const Tensor& x_, const Tensor& offsets_, int64_t num_experts) {
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto dt = detail::cuda_dtype(x_, "moe_grouped_gemm");
  const Tensor gy = gy_.to(x_.scalar_type()).contiguous(), x = x_.contiguous(),
               offsets = offsets_.contiguous();
  Tensor gw = torch::empty({num_experts, gy.size(1), x.size(1)}, x.options().dtype(torch::kFloat));
  cuda::launch_moe_grouped_wgrad(dt, gy.data_ptr(), x.data_ptr(), offsets.data_ptr<int64_t>(),
                                 gw.data_ptr<float>(), x.size(0), gy.size(1), x.size(1),
                                 num_experts, detail::stream());
  return gw.to(x.scalar_type());
}
#endif

// ---- autograd ----

using GatherSig = Tensor(const Tensor&, const Tensor&, int64_t, const OptTensor&);
using UnpermuteSig = Tensor(const Tensor&, const Tensor&, int64_t, const OptTensor&);
using RouterGradSig = Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t);
using GemmSig = Tensor(const Tensor&, const Tensor&, const Tensor&, bool);
using WgradSig = Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t);

struct GatherFn : torch::autograd::Function<GatherFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                        const Tensor& sorted_slots, const Tensor& slot_rows, int64_t topk) {
    static auto g = detail::op<GatherSig>("grpo::_moe_gather");
    ctx->save_for_backward({slot_rows});
    ctx->saved_data["topk"] = topk;
    return g.call(x, sorted_slots, topk, std::nullopt);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto u = detail::op<UnpermuteSig>("grpo::_moe_unpermute");
    const auto s = ctx->get_saved_variables();
    return {u.call(grads[0], s[0], ctx->saved_data["topk"].toInt(), std::nullopt), Tensor(),
            Tensor(), Tensor()};
  }
};

struct GroupedGemmFn : torch::autograd::Function<GroupedGemmFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& w,
                        const Tensor& offsets) {
    static auto g = detail::op<GemmSig>("grpo::_moe_gemm");
    ctx->save_for_backward({x, w, offsets});
    return g.call(x, w, offsets, true);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto g = detail::op<GemmSig>("grpo::_moe_gemm");
    static auto wg = detail::op<WgradSig>("grpo::_moe_gemm_wgrad");
    const auto s = ctx->get_saved_variables();
    const Tensor gy = grads[0].to(s[0].scalar_type());
    return {g.call(gy, s[1], s[2], false), wg.call(gy, s[0], s[2], s[1].size(0)), Tensor()};
  }
};

struct UnpermuteFn : torch::autograd::Function<UnpermuteFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& y,
                        const Tensor& sorted_slots, const Tensor& slot_rows, const Tensor& w) {
    static auto u = detail::op<UnpermuteSig>("grpo::_moe_unpermute");
    TORCH_CHECK(w.dim() == 2 && w.numel() == slot_rows.numel(),
                "grpo::moe_unpermute: router_weights must be [tokens, topk] with ",
                slot_rows.numel(), " entries, got ", w.sizes());
    ctx->save_for_backward({y, sorted_slots, slot_rows, w});
    return u.call(y, slot_rows, w.size(1), w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto g = detail::op<GatherSig>("grpo::_moe_gather");
    static auto rg = detail::op<RouterGradSig>("grpo::_moe_router_grad");
    const auto s = ctx->get_saved_variables();
    const Tensor &y = s[0], &sorted = s[1], &rows = s[2], &w = s[3];
    const int64_t topk = w.size(1);
    const Tensor go = grads[0].to(y.scalar_type());
    return {g.call(go, sorted, topk, w), Tensor(), Tensor(),
            rg.call(y, rows, go, topk).view(w.sizes()).to(w.scalar_type())};
  }
};

Tensor gather_composite(const Tensor& x, const Tensor& sorted, const Tensor& rows, int64_t topk) {
  return GatherFn::apply(x, sorted, rows, topk);
}
Tensor gemm_composite(const Tensor& x, const Tensor& w, const Tensor& offsets) {
  return GroupedGemmFn::apply(x, w, offsets);
}
Tensor unpermute_composite(const Tensor& y, const Tensor& sorted, const Tensor& rows,
                           const Tensor& w) {
  return UnpermuteFn::apply(y, sorted, rows, w);
}

}  // namespace

MoeRouting moe_permute(const Tensor& expert_ids, int64_t num_experts) {
  static auto h = detail::op<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, int64_t)>(
      "grpo::moe_permute");
  auto [sorted, rows, offsets] = h.call(expert_ids, num_experts);
  return {sorted, rows, offsets};
}

Tensor moe_gather(const Tensor& x, const MoeRouting& r, int64_t topk) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t)>(
      "grpo::moe_gather");
  return h.call(x, r.sorted_slots, r.slot_rows, topk);
}

Tensor moe_grouped_gemm(const Tensor& x, const Tensor& weight, const MoeRouting& r) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&, const Tensor&)>(
      "grpo::moe_grouped_gemm");
  return h.call(x, weight, r.offsets);
}

Tensor moe_unpermute(const Tensor& y, const MoeRouting& r, const Tensor& router_weights) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&)>(
      "grpo::moe_unpermute");
  return h.call(y, r.sorted_slots, r.slot_rows, router_weights);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("moe_gather", &grpo::kernels::gather_composite);
  m.impl("moe_grouped_gemm", &grpo::kernels::gemm_composite);
  m.impl("moe_unpermute", &grpo::kernels::unpermute_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("moe_permute", &grpo::kernels::permute_cpu);
  m.impl("_moe_gather", &grpo::kernels::gather_cpu);
  m.impl("_moe_unpermute", &grpo::kernels::unpermute_cpu);
  m.impl("_moe_router_grad", &grpo::kernels::router_grad_cpu);
  m.impl("_moe_gemm", &grpo::kernels::gemm_cpu);
  m.impl("_moe_gemm_wgrad", &grpo::kernels::wgrad_cpu);
}
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("moe_permute", &grpo::kernels::permute_cuda);
  m.impl("_moe_gather", &grpo::kernels::gather_cuda);
  m.impl("_moe_unpermute", &grpo::kernels::unpermute_cuda);
  m.impl("_moe_router_grad", &grpo::kernels::router_grad_cuda);
  m.impl("_moe_gemm", &grpo::kernels::gemm_cuda);
  m.impl("_moe_gemm_wgrad", &grpo::kernels::wgrad_cuda);
}
#endif
