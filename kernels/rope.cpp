// RoPE (RoFormer eq. 34) in transformers' "rotate half" layout: CPU reference, CUDA wrapper,
// autograd. The rotation is orthogonal, so its backward is the inverse rotation (sin -> -sin).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>

#include "grpo/kernels/ops.h"
#include "op_util.h"

namespace grpo::kernels {
namespace {
using torch::Tensor;

// Returns the number of positions T; checks x is [..., heads, head_dim] with T leading rows.
int64_t check_x(const Tensor& x, const Tensor& cos, const char* name) {
  detail::check_float(x, "rope_", name);
  TORCH_CHECK(x.dim() >= 2 && x.size(-1) % 2 == 0 && x.size(-1) > 0, "grpo::rope_: ", name,
              " must be [..., heads, head_dim] with an even head_dim, got ", x.sizes());
  TORCH_CHECK(x.is_contiguous(), "grpo::rope_: ", name, " must be contiguous (it is rotated in place)");
  const int64_t t = x.numel() / (x.size(-1) * x.size(-2));
  TORCH_CHECK(cos.size(0) == t && cos.size(1) == x.size(-1) / 2, "grpo::rope_: cos/sin must be [",
              t, ", ", x.size(-1) / 2, "] for ", name, " of shape ", x.sizes(), ", got ", cos.sizes());
  TORCH_CHECK(x.device() == cos.device(), "grpo::rope_: ", name, " and cos must share a device");
  return t;
}

void check_args(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin) {
  TORCH_CHECK(cos.dim() == 2 && cos.sizes() == sin.sizes(),
              "grpo::rope_: cos and sin must both be [tokens, head_dim / 2], got ", cos.sizes(),
              " and ", sin.sizes());
  TORCH_CHECK(cos.scalar_type() == torch::kFloat && sin.scalar_type() == torch::kFloat,
              "grpo::rope_: cos and sin must be float32");
  check_x(q, cos, "q");
  check_x(k, cos, "k");
  TORCH_CHECK(q.size(-1) == k.size(-1), "grpo::rope_: q and k head_dim differ: ", q.sizes(), " vs ",
              k.sizes());
}

// In place, one pass: each (token, head) row's pairs (a, b) = (x[i], x[i + d/2]) become
// (a c - b s, b c + a s) with the token's float32 cos/sin (s negated for the inverse), computed in
// float32 (float64 for float64 x) and rounded once; rows split over threads.
template <class T>
void rotate_rows(T* x, const float* cos, const float* sin, int64_t t, int64_t heads, int64_t d, bool inverse) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int64_t half = d / 2;
  const A sign = inverse ? A(-1) : A(1);
  at::parallel_for(0, t * heads, std::max<int64_t>(1, 16384 / d), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      T* a = x + r * d;
      T* bb = a + half;
      const float *c = cos + (r / heads) * half, *s = sin + (r / heads) * half;
      for (int64_t i = 0; i < half; ++i) {
        const A av = A(a[i]), bv = A(bb[i]), cv = A(c[i]), sv = sign * A(s[i]);
        a[i] = T(av * cv - bv * sv);
        bb[i] = T(bv * cv + av * sv);
      }
    }
  });
}

void rotate_cpu(Tensor& x, const Tensor& cos_, const Tensor& sin_, bool inverse) {
  const Tensor cos = cos_.contiguous(), sin = sin_.contiguous();
  const int64_t d = x.size(-1), t = cos.size(0), heads = x.numel() / (t * d);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "rope_", [&] {
    rotate_rows<scalar_t>(x.data_ptr<scalar_t>(), cos.data_ptr<float>(), sin.data_ptr<float>(), t, heads, d, inverse);
  });
}

void rope_cpu(Tensor& q, Tensor& k, const Tensor& cos, const Tensor& sin, bool inverse) {
  check_args(q, k, cos, sin);
  rotate_cpu(q, cos, sin, inverse);
  rotate_cpu(k, cos, sin, inverse);
}

#ifdef GRPO_HAVE_CUDA_KERNELS
void rope_cuda(Tensor& q, Tensor& k, const Tensor& cos_, const Tensor& sin_, bool inverse) {
  check_args(q, k, cos_, sin_);
  const c10::cuda::CUDAGuard guard(q.device());
  const Tensor cos = cos_.contiguous(), sin = sin_.contiguous();
  for (Tensor* x : {&q, &k}) {
    const int64_t d = x->size(-1), heads = x->size(-2);
    cuda::launch_rope_inplace(detail::cuda_dtype(*x, "rope_"), x->data_ptr(),
                              cos.data_ptr<float>(), sin.data_ptr<float>(), cos.size(0), heads, d,
                              inverse, detail::stream());
  }
}
#endif

using RopeSig = void(Tensor&, Tensor&, const Tensor&, const Tensor&, bool);

struct RopeFn : torch::autograd::Function<RopeFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const Tensor& q, const Tensor& k,
                                                const Tensor& cos, const Tensor& sin) {
    static auto rot = detail::op<RopeSig>("grpo::rope_");
    Tensor qo = q.contiguous().clone(), ko = k.contiguous().clone();
    rot.call(qo, ko, cos, sin, false);
    ctx->save_for_backward({cos, sin});
    return {qo, ko};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto rot = detail::op<RopeSig>("grpo::rope_");
    const auto s = ctx->get_saved_variables();
    Tensor gq = grads[0].contiguous().clone(), gk = grads[1].contiguous().clone();
    rot.call(gq, gk, s[0], s[1], true);
    return {gq, gk, Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor> rope_composite(const Tensor& q, const Tensor& k, const Tensor& cos,
                                          const Tensor& sin) {
  auto out = RopeFn::apply(q, k, cos, sin);
  return {out[0], out[1]};
}

}  // namespace

std::tuple<Tensor, Tensor> rope(const Tensor& q, const Tensor& k, const Tensor& cos,
                                const Tensor& sin) {
  static auto h = detail::op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                        const Tensor&, const Tensor&)>("grpo::rope");
  return h.call(q, k, cos, sin);
}

void rope_(Tensor& q, Tensor& k, const Tensor& cos, const Tensor& sin, bool inverse) {
  static auto h = detail::op<RopeSig>("grpo::rope_");
  h.call(q, k, cos, sin, inverse);
}

}  // namespace grpo::kernels

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("rope", &grpo::kernels::rope_composite);
}
TORCH_LIBRARY_IMPL(grpo, CPU, m) { m.impl("rope_", &grpo::kernels::rope_cpu); }
#ifdef GRPO_HAVE_CUDA_KERNELS
TORCH_LIBRARY_IMPL(grpo, CUDA, m) { m.impl("rope_", &grpo::kernels::rope_cuda); }
#endif
