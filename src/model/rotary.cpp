#include "rotary.h"

#include <cmath>

#include <c10/core/impl/LocalDispatchKeySet.h>

#include "grpo/kernels/ops.h"

namespace grpo::model {

torch::Tensor rope_inv_freq(const ModelSpec& spec) {
  const int64_t dim = spec.head_dim;
  auto exponent = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(torch::scalar_tensor(spec.rope_theta, torch::kFloat32), exponent);
  const auto& rs = spec.rope_scaling;
  if (rs.factor <= 0) return inv_freq;
  // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend in between.
  const double old_len = rs.original_max_position_embeddings;
  const double low_wavelen = old_len / rs.low_freq_factor, high_wavelen = old_len / rs.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
  auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions) {
  auto f = inv_freq.to(positions.device());
  // The angles stay float32 under trainer.bf16's autocast, as in HF (its rotary embedding disables
  // autocast here): a bf16 product would put position 1000's angle off by up to ~4 rad, and the
  // grpo::rope op takes float32 tables only.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  // Same association as HF: (inv_freq[None,:,None] @ pos[:,None,:]).transpose(1, 2).
  auto freqs = torch::matmul(f.view({1, -1, 1}).expand({positions.size(0), -1, 1}),
                             positions.to(torch::kFloat32).unsqueeze(1))
                   .transpose(1, 2);
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  auto c = cos.unsqueeze(1).to(x.scalar_type()), s = sin.unsqueeze(1).to(x.scalar_type());
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * c + rotated * s;
}

std::pair<torch::Tensor, torch::Tensor> apply_rope_qk(const torch::Tensor& q, const torch::Tensor& k,
                                                      const torch::Tensor& cos, const torch::Tensor& sin,
                                                      OpImpl impl) {
  if (impl == OpImpl::PLAIN) return {apply_rope(q.transpose(1, 2), cos, sin), apply_rope(k.transpose(1, 2), cos, sin)};
  // rope_cos_sin's tables repeat the angles in both halves; the op takes one half per token.
  const int64_t half = cos.size(-1) / 2, tokens = cos.size(0) * cos.size(1);
  auto c = cos.narrow(-1, 0, half).reshape({tokens, half}).contiguous();  // [B*T, hd/2] float32
  auto s = sin.narrow(-1, 0, half).reshape({tokens, half}).contiguous();
  auto [qr, kr] = kernels::rope(q.contiguous(), k.contiguous(), c, s);
  return {qr.transpose(1, 2), kr.transpose(1, 2)};
}

}  // namespace grpo::model
