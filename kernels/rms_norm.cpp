// RMSNorm, optionally fused with the residual add: CPU reference, CUDA wrapper, autograd.
// Formula: Zhang & Sennrich 2019 eq. 4; backward:
//   n = h r, r = (mean(h^2) + eps)^-1/2, dn = grad_y * w,
//   grad_h = r (dn - n mean(dn n)),  grad_w = sum_rows grad_y n.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "grpo/kernels/ops.h"
#include "op_util.h"

namespace grpo::kernels {
namespace {
using torch::Tensor;
using OptTensor = std::optional<Tensor>;

void check_args(const Tensor& x, const OptTensor& residual, const Tensor& w, const char* op) {
  detail::check_float(x, op, "x");
  detail::check_same(x, w, op, "x", "weight");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) > 0, "grpo::", op, ": x must be [..., hidden], got ",
              x.sizes());
  TORCH_CHECK(w.dim() == 1 && w.size(0) == x.size(-1), "grpo::", op, ": weight must be [",
              x.size(-1), "], got ", w.sizes());
  if (residual && residual->defined()) {
    detail::check_same(x, *residual, op, "x", "residual");
    TORCH_CHECK(residual->sizes() == x.sizes(), "grpo::", op, ": residual must have x's shape ",
                x.sizes(), ", got ", residual->sizes());
  }
}

// ---- CPU: one pass over each row, rows split over threads (at::parallel_for) ----
// The LibTorch composition this replaced ran 5 full passes forward and ~10 backward, each writing
// a temporary; here the forward reads a row twice (sum of squares, then the output) and the
// backward three times, all from cache, float32 (float64) accumulation. Inner loops keep kLanes
// independent partial sums so the compiler vectorises them without reassociating one sum.

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
constexpr int kLanes = 16;

// sum_c a[c] * b[c] in A.
template <class T, class U, class A>
A dot_row(const T* a, const U* b, int64_t n) {
  A part[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
    for (int k = 0; k < kLanes; ++k) part[k] += A(a[c + k]) * A(b[c + k]);
  A s = 0;
  for (; c < n; ++c) s += A(a[c]) * A(b[c]);
  for (int k = 0; k < kLanes; ++k) s += part[k];
  return s;
}

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1)); }

template <class T>
void fwd_rows(const T* x, const T* res, const T* w, T* y, T* h, Acc<T>* rstd, int64_t rows, int64_t cols,
              double eps) {
  using A = Acc<T>;
  at::parallel_for(0, rows, row_grain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* hin = x + r * cols;
      if (res) {  // h = x + residual, rounded to T: the value the next residual carries
        T* hr = h + r * cols;
        const T *xr = x + r * cols, *rr = res + r * cols;
        for (int64_t c = 0; c < cols; ++c) hr[c] = T(A(xr[c]) + A(rr[c]));
        hin = hr;
      }
      const A rs = A(1) / std::sqrt(dot_row<T, T, A>(hin, hin, cols) / A(cols) + A(eps));
      rstd[r] = rs;
      T* yr = y + r * cols;
      for (int64_t c = 0; c < cols; ++c) yr[c] = T(A(hin[c]) * rs * A(w[c]));
    }
  });
}

// grad_h = r (dn - n mean(dn n)) (+ grad_h of the residual output), dn = gy w, n = h r; the
// weight gradient sum_rows gy n accumulates in one float32 (float64) row per thread, summed after.
template <class T>
void bwd_rows(const T* gy, const T* ge, const T* h, const T* w, const Acc<T>* rstd, T* gx, Acc<T>* gw_part,
              int64_t rows, int64_t cols) {
  using A = Acc<T>;
  at::parallel_for(0, rows, row_grain(cols), [&](int64_t b, int64_t e) {
    A* gw = gw_part + at::get_thread_num() * cols;
    for (int64_t r = b; r < e; ++r) {
      const T *gr = gy + r * cols, *hr = h + r * cols;
      const A rs = rstd[r];
      A part[kLanes] = {};  // dot = sum_c gy_c w_c h_c, lanes as in dot_row
      int64_t c = 0;
      for (; c + kLanes <= cols; c += kLanes)
        for (int k = 0; k < kLanes; ++k) part[k] += A(gr[c + k]) * A(w[c + k]) * A(hr[c + k]);
      A dot = 0;
      for (; c < cols; ++c) dot += A(gr[c]) * A(w[c]) * A(hr[c]);
      for (int k = 0; k < kLanes; ++k) dot += part[k];
      // n mean(dn n) = h r (r dot / cols) = h m: dn n summed is r dot, dot = sum_c gy_c w_c h_c.
      const A m = dot * rs * rs / A(cols);
      T* out = gx + r * cols;
      const T* er = ge ? ge + r * cols : nullptr;
      for (int64_t c = 0; c < cols; ++c) {
        const A hv = A(hr[c]), g = A(gr[c]);
        A v = rs * (g * A(w[c]) - hv * m);  // r (dn - n mean(dn n))
        if (er) v += A(er[c]);
        out[c] = T(v);
        gw[c] += g * hv * rs;
      }
    }
  });
}

std::tuple<Tensor, Tensor, Tensor> fwd_cpu(const Tensor& x_, const OptTensor& residual, const Tensor& w_,
                                           double eps) {
  check_args(x_, residual, w_, "_rms_norm_fwd");
  const auto acc = detail::acc_type(x_.scalar_type());
  const Tensor x = x_.contiguous(), w = w_.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const bool has_res = residual && residual->defined();
  const Tensor res = has_res ? residual->contiguous() : Tensor();
  Tensor y = torch::empty_like(x), h = has_res ? torch::empty_like(x) : Tensor();
  Tensor rstd = torch::empty({rows}, x.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "_rms_norm_fwd", [&] {
    fwd_rows<scalar_t>(x.data_ptr<scalar_t>(), has_res ? res.data_ptr<scalar_t>() : nullptr,
                       w.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), has_res ? h.data_ptr<scalar_t>() : nullptr,
                       rstd.data_ptr<Acc<scalar_t>>(), rows, cols, eps);
  });
  return {y, h, rstd};
}

std::tuple<Tensor, Tensor> bwd_cpu(const Tensor& grad_y, const OptTensor& grad_h, const Tensor& h_,
                                   const Tensor& w_, const Tensor& rstd_) {
  const auto acc = detail::acc_type(h_.scalar_type());
  const Tensor h = h_.contiguous(), w = w_.contiguous(), gy = grad_y.to(h.scalar_type()).contiguous(),
               rstd = rstd_.to(acc).contiguous();
  const bool has_gh = grad_h && grad_h->defined();
  const Tensor ge = has_gh ? grad_h->to(h.scalar_type()).contiguous() : Tensor();
  const int64_t cols = h.size(-1), rows = h.numel() / cols;
  Tensor gx = torch::empty_like(h);
  Tensor part = torch::zeros({at::get_num_threads(), cols}, h.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h.scalar_type(), "_rms_norm_bwd", [&] {
    bwd_rows<scalar_t>(gy.data_ptr<scalar_t>(), has_gh ? ge.data_ptr<scalar_t>() : nullptr, h.data_ptr<scalar_t>(),
                       w.data_ptr<scalar_t>(), rstd.data_ptr<Acc<scalar_t>>(), gx.data_ptr<scalar_t>(),
                       part.data_ptr<Acc<scalar_t>>(), rows, cols);
  });
  return {gx, part.sum(0).to(w.scalar_type())};
}

// ---- CUDA ----
#ifdef GRPO_HAVE_CUDA_KERNELS
std::tuple<Tensor, Tensor, Tensor> fwd_cuda(const Tensor& x_, const OptTensor& residual,
                                            const Tensor& w_, double eps) {
  check_args(x_, residual, w_, "_rms_norm_fwd");
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto dt = detail::cuda_dtype(x_, "_rms_norm_fwd");
  const Tensor x = x_.contiguous(), w = w_.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const bool has_res = residual && residual->defined();
  const Tensor res = has_res ? residual->contiguous() : Tensor();
  Tensor y = torch::empty_like(x), h = has_res ? torch::empty_like(x) : Tensor();
  Tensor rstd = torch::empty({rows}, x.options().dtype(torch::kFloat));
  cuda::launch_rms_norm_fwd(dt, x.data_ptr(), has_res ? res.data_ptr() : nullptr, w.data_ptr(),
                            y.data_ptr(), has_res ? h.data_ptr() : nullptr,
                            rstd.data_ptr<float>(), rows, cols, static_cast<float>(eps),
                            detail::stream());
  return {y, h, rstd};
}

std::tuple<Tensor, Tensor> bwd_cuda(const Tensor& grad_y_, const OptTensor& grad_h_,
                                    const Tensor& h_, const Tensor& w_, const Tensor& rstd_) {
  const c10::cuda::CUDAGuard guard(h_.device());
  const auto dt = detail::cuda_dtype(h_, "_rms_norm_bwd");
  const Tensor gy = grad_y_.to(h_.scalar_type()).contiguous(), h = h_.contiguous(),
               w = w_.contiguous(), rstd = rstd_.to(torch::kFloat).contiguous();
  const bool has_gh = grad_h_ && grad_h_->defined();
  const Tensor ge = has_gh ? grad_h_->to(h.scalar_type()).contiguous() : Tensor();
  const int64_t cols = h.size(-1), rows = h.numel() / cols;
  Tensor gx = torch::empty_like(h);
  Tensor part = torch::empty({cuda::rms_norm_bwd_row_blocks(rows), cols},
                             h.options().dtype(torch::kFloat));
  cuda::launch_rms_norm_bwd(dt, gy.data_ptr(), has_gh ? ge.data_ptr() : nullptr, h.data_ptr(),
                            w.data_ptr(), rstd.data_ptr<float>(), gx.data_ptr(),
                            part.data_ptr<float>(), rows, cols, detail::stream());
  return {gx, part.sum(0).to(w.scalar_type())};
}
#endif

// ---- autograd ----

using FwdSig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const OptTensor&, const Tensor&,
                                                  double);
using BwdSig = std::tuple<Tensor, Tensor>(const Tensor&, const OptTensor&, const Tensor&,
                                          const Tensor&, const Tensor&);

// Both Functions save (h, weight, rstd); h is x itself for the plain norm.
Tensor norm_input_grad(torch::autograd::AutogradContext* ctx, const Tensor& gy_in,
                       const OptTensor& gh, Tensor* gw) {
  static auto bwd = detail::op<BwdSig>("grpo::_rms_norm_bwd");
  const auto saved = ctx->get_saved_variables();
  const Tensor gy = gy_in.defined() ? gy_in : torch::zeros_like(saved[0]);
  auto [gx, gwt] = bwd.call(gy, gh, saved[0], saved[1], saved[2]);
  *gw = gwt;
  return gx;
}

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& w,
                        double eps) {
    static auto fwd = detail::op<FwdSig>("grpo::_rms_norm_fwd");
    auto [y, h, rstd] = fwd.call(x, std::nullopt, w, eps);
    ctx->save_for_backward({x, w, rstd});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    Tensor gw;
    Tensor gx = norm_input_grad(ctx, grads[0], std::nullopt, &gw);
    return {gx, gw, Tensor()};
  }
};

struct AddRmsNormFn : torch::autograd::Function<AddRmsNormFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const Tensor& x, const Tensor& residual,
                                                const Tensor& w, double eps) {
    static auto fwd = detail::op<FwdSig>("grpo::_rms_norm_fwd");
    auto [y, h, rstd] = fwd.call(x, residual, w, eps);
    ctx->save_for_backward({h, w, rstd});
    return {y, h};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    Tensor gw;
    // h = x + residual feeds both the norm and the next residual: its gradient is the sum.
    const OptTensor gh = grads[1].defined() ? OptTensor(grads[1]) : std::nullopt;
    Tensor gx = norm_input_grad(ctx, grads[0], gh, &gw);
    return {gx, gx, gw, Tensor()};
  }
};

Tensor rms_norm_composite(const Tensor& x, const Tensor& w, double eps) {
  return RmsNormFn::apply(x, w, eps);
}
std::tuple<Tensor, Tensor> add_rms_norm_composite(const Tensor& x, const Tensor& residual,
                                                  const Tensor& w, double eps) {
  auto out = AddRmsNormFn::apply(x, residual, w, eps);
  return {out[0], out[1]};
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&, double)>("grpo::rms_norm");
  return h.call(x, weight, eps);
}

std::tuple<Tensor, Tensor> add_rms_norm(const Tensor& x, const Tensor& residual,
                                        const Tensor& weight, double eps) {
  static auto h = detail::op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                        const Tensor&, double)>("grpo::add_rms_norm");
  return h.call(x, residual, weight, eps);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("rms_norm", &grpo::kernels::rms_norm_composite);
  m.impl("add_rms_norm", &grpo::kernels::add_rms_norm_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("_rms_norm_fwd", &grpo::kernels::fwd_cpu);
  m.impl("_rms_norm_bwd", &grpo::kernels::bwd_cpu);
}
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("_rms_norm_fwd", &grpo::kernels::fwd_cuda);
  m.impl("_rms_norm_bwd", &grpo::kernels::bwd_cuda);
}
#endif
