#include "grpo/model/cpu_bf16_attention.h"

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <atomic>
#include <cmath>

#include "grpo/model/mkl_serial.h"

namespace grpo::model {

namespace {

std::atomic<int64_t> g_backwards{0};

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The forward attention.cpp runs without gradients: LibTorch's bf16 SDPA, MKL on one thread.
torch::Tensor bf16_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  MklSerial serial(true);
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false,
                                          /*scale=*/std::nullopt, /*enable_gqa=*/q.size(1) != k.size(1));
}

struct Bf16Sdpa : public torch::autograd::Function<Bf16Sdpa> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask) {
    ctx->save_for_backward({q, k, v});
    ctx->saved_data["mask"] = mask;
    return bf16_sdpa(q, k, v, mask);
  }

  // Softmax attention's gradient (as FlashAttention-2's backward, in float32 and unblocked):
  // P = softmax(scale q k^T + mask), dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)),
  // dQ = scale dS K, dK = scale dS^T Q. Grouped-query heads: the H/Hkv query heads of one kv head
  // are stacked as rows, so dK and dV sum over them in the products.
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    g_backwards.fetch_add(1, std::memory_order_relaxed);
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);  // float32 products here
    auto saved = ctx->get_saved_variables();
    const auto& q = saved[0];
    const auto& k = saved[1];
    const auto& v = saved[2];
    const torch::Tensor mask = ctx->saved_data["mask"].toTensor();
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Hkv = k.size(1), S = k.size(2);
    const int64_t g = H / Hkv;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto qg = q.to(torch::kFloat32).reshape({B, Hkv, g * T, D});
    auto k32 = k.to(torch::kFloat32), v32 = v.to(torch::kFloat32);
    auto dout = grads[0].to(torch::kFloat32).reshape({B, Hkv, g * T, D});
    auto s = torch::matmul(qg, k32.transpose(-1, -2)).mul_(scale);  // [B, Hkv, g*T, S]
    if (mask.defined()) {
      auto m = mask.view({mask.size(0), 1, 1, T, S}).expand({B, Hkv, g, T, S}).reshape({B, Hkv, g * T, S});
      s.masked_fill_(m.logical_not(), -std::numeric_limits<float>::infinity());
    }
    auto mx = std::get<0>(s.max(-1, /*keepdim=*/true));
    mx.masked_fill_(mx.isinf(), 0.0);  // a row with no key allowed: exp(-inf) = 0 everywhere, P = 0
    auto p = s.sub_(mx).exp_();
    p.div_(p.sum(-1, true).clamp_min_(std::numeric_limits<float>::min()));
    auto dv = torch::matmul(p.transpose(-1, -2), dout);             // [B, Hkv, S, D]
    auto dp = torch::matmul(dout, v32.transpose(-1, -2));           // [B, Hkv, g*T, S]
    auto ds = p.mul_(dp.sub_((p * dp).sum(-1, true)));               // P (dP - rowsum(P dP)), in p's storage
    auto dq = torch::matmul(ds, k32).mul_(scale).reshape({B, H, T, D});
    auto dk = torch::matmul(ds.transpose(-1, -2), qg).mul_(scale);  // [B, Hkv, S, D]
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor cpu_bf16_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask) {
  return Bf16Sdpa::apply(q, k, v, mask);
}

int64_t cpu_bf16_sdpa_backwards() { return g_backwards.load(std::memory_order_relaxed); }

}  // namespace grpo::model
