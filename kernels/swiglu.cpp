// SwiGLU: silu(gate) * up (Shazeer 2020 eq. 6): CPU reference, CUDA wrapper, autograd.
// Backward: grad_gate = grad * up * s (1 + g (1 - s)), grad_up = grad * g s, s = sigmoid(g).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <type_traits>

#include "grpo/kernels/ops.h"
#include "op_util.h"

namespace grpo::kernels {
namespace {
using torch::Tensor;

void check_args(const Tensor& gate, const Tensor& up, const char* op) {
  detail::check_float(gate, op, "gate");
  detail::check_same(gate, up, op, "gate", "up");
  TORCH_CHECK(gate.sizes() == up.sizes(), "grpo::", op, ": up must have gate's shape ",
              gate.sizes(), ", got ", up.sizes());
}

// CPU. Forward: silu(gate) (ATen's vectorised kernel) times up in place: two passes, one output
// allocation. bfloat16 keeps one rounding: computed in float32, rounded once.
Tensor fwd_cpu(const Tensor& gate, const Tensor& up) {
  check_args(gate, up, "_swiglu_fwd");
  if (gate.scalar_type() == torch::kBFloat16) {
    const Tensor g = gate.to(torch::kFloat);
    return torch::silu(g).mul_(up.to(torch::kFloat)).to(gate.scalar_type());
  }
  return torch::silu(gate).mul_(up);
}

// Backward: s = sigmoid(gate) in one vectorised pass, then both gradients in one elementwise loop
// over (grad, gate, up, s), rows split over threads.
template <class T>
void bwd_loop(const T* dy, const T* g, const T* u, const float* s32, const double* s64, T* gg, T* gu, int64_t n) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  at::parallel_for(0, n, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const A sv = s64 ? A(s64[i]) : A(s32[i]), gv = A(g[i]), d = A(dy[i]);
      gg[i] = T(d * A(u[i]) * sv * (A(1) + gv * (A(1) - sv)));
      gu[i] = T(d * gv * sv);
    }
  });
}

std::tuple<Tensor, Tensor> bwd_cpu(const Tensor& grad, const Tensor& gate_, const Tensor& up_) {
  const auto acc = detail::acc_type(gate_.scalar_type());
  const Tensor gate = gate_.contiguous(), up = up_.contiguous(), dy = grad.to(gate.scalar_type()).contiguous();
  const Tensor s = torch::sigmoid(gate.to(acc)).contiguous();  // [n] float32 (float64)
  Tensor gg = torch::empty_like(gate), gu = torch::empty_like(up);
  const bool dbl = acc == torch::kDouble;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, gate.scalar_type(), "_swiglu_bwd", [&] {
    bwd_loop<scalar_t>(dy.data_ptr<scalar_t>(), gate.data_ptr<scalar_t>(), up.data_ptr<scalar_t>(),
                       dbl ? nullptr : s.data_ptr<float>(), dbl ? s.data_ptr<double>() : nullptr,
                       gg.data_ptr<scalar_t>(), gu.data_ptr<scalar_t>(), gate.numel());
  });
  return {gg, gu};
}

#ifdef GRPO_HAVE_CUDA_KERNELS
Tensor fwd_cuda(const Tensor& gate_, const Tensor& up_) {
  check_args(gate_, up_, "_swiglu_fwd");
  const c10::cuda::CUDAGuard guard(gate_.device());
  const auto dt = detail::cuda_dtype(gate_, "_swiglu_fwd");
  const Tensor gate = gate_.contiguous(), up = up_.contiguous();
  Tensor out = torch::empty_like(gate);
  cuda::launch_swiglu_fwd(dt, gate.data_ptr(), up.data_ptr(), out.data_ptr(), gate.numel(),
                          detail::stream());
  return out;
}

std::tuple<Tensor, Tensor> bwd_cuda(const Tensor& grad_, const Tensor& gate_, const Tensor& up_) {
  const c10::cuda::CUDAGuard guard(gate_.device());
  const auto dt = detail::cuda_dtype(gate_, "_swiglu_bwd");
  const Tensor gate = gate_.contiguous(), up = up_.contiguous(),
               grad = grad_.to(gate.scalar_type()).contiguous();
  Tensor gg = torch::empty_like(gate), gu = torch::empty_like(up);
  cuda::launch_swiglu_bwd(dt, grad.data_ptr(), gate.data_ptr(), up.data_ptr(), gg.data_ptr(),
                          gu.data_ptr(), gate.numel(), detail::stream());
  return {gg, gu};
}
#endif

struct SwigluFn : torch::autograd::Function<SwigluFn> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& gate, const Tensor& up) {
    static auto fwd = detail::op<Tensor(const Tensor&, const Tensor&)>("grpo::_swiglu_fwd");
    ctx->save_for_backward({gate, up});
    return fwd.call(gate, up);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto bwd = detail::op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                            const Tensor&)>("grpo::_swiglu_bwd");
    const auto s = ctx->get_saved_variables();
    auto [gg, gu] = bwd.call(grads[0], s[0], s[1]);
    return {gg, gu};
  }
};

Tensor swiglu_composite(const Tensor& gate, const Tensor& up) { return SwigluFn::apply(gate, up); }

}  // namespace

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  static auto h = detail::op<Tensor(const Tensor&, const Tensor&)>("grpo::swiglu");
  return h.call(gate, up);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("swiglu", &grpo::kernels::swiglu_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("_swiglu_fwd", &grpo::kernels::fwd_cpu);
  m.impl("_swiglu_bwd", &grpo::kernels::bwd_cpu);
}
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("_swiglu_fwd", &grpo::kernels::fwd_cuda);
  m.impl("_swiglu_bwd", &grpo::kernels::bwd_cuda);
}
#endif
