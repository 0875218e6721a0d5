#include "grpo/rollout/sampling.h"

#include <limits>

#include "grpo/util/error.h"

namespace grpo::rollout {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

torch::Tensor apply_repetition_penalty(torch::Tensor logits, const torch::Tensor& seen, double penalty) {
  if (penalty == 1.0) return logits;
  auto penalised = torch::where(logits > 0, logits / penalty, logits * penalty);
  return logits.copy_(torch::where(seen, penalised, logits));
}

torch::Tensor apply_top_k(torch::Tensor logits, int64_t k) {
  if (k <= 0 || k >= logits.size(-1)) return logits;
  auto kth = std::get<0>(logits.topk(k, -1, /*largest=*/true, /*sorted=*/true)).narrow(-1, k - 1, 1);
  return logits.masked_fill_(logits < kth, kNegInf);
}

torch::Tensor apply_top_p(torch::Tensor logits, double p) {
  if (p >= 1.0) return logits;
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  auto probs = sorted.softmax(-1);
  // Mass of the strictly more likely tokens: once it reaches p the set is complete, so the token is
  // dropped. The top token has 0 before it and always stays.
  auto before = probs.cumsum(-1) - probs;
  auto drop_sorted = before >= p;
  auto drop = torch::zeros_like(drop_sorted).scatter_(-1, order, drop_sorted);
  return logits.masked_fill_(drop, kNegInf);
}

torch::Tensor apply_min_p(torch::Tensor logits, double min_p) {
  if (min_p <= 0.0) return logits;
  auto probs = logits.softmax(-1);
  auto top = std::get<0>(probs.max(-1, /*keepdim=*/true));
  return logits.masked_fill_(probs < top * min_p, kNegInf);
}

torch::Tensor process_logits(const torch::Tensor& logits, const SamplingParams& params, const torch::Tensor& seen) {
  const bool penalty = params.repetition_penalty != 1.0;
  const bool warp = params.temperature != 0.0 &&
                    (params.temperature != 1.0 || params.top_k > 0 || params.top_p < 1.0 || params.min_p > 0.0);
  // Plain sampling at T = 1 (the common GRPO setting) modifies nothing: skip the [N, V] copy.
  if (!penalty && !warp) return logits.to(torch::kFloat32);
  auto x = logits.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
  if (penalty) apply_repetition_penalty(x, seen, params.repetition_penalty);
  if (params.temperature == 0.0) return x;  // greedy: the filters keep the argmax, skip them
  if (params.temperature != 1.0) x.div_(params.temperature);
  apply_top_k(x, params.top_k);
  apply_top_p(x, params.top_p);
  apply_min_p(x, params.min_p);
  return x;
}

torch::Tensor draw_tokens(const torch::Tensor& processed, double temperature, at::Generator& gen) {
  if (temperature == 0.0) return processed.argmax(-1);
  // Inverse-CDF sampling: one uniform per row and a binary search in the cumulative distribution.
  // torch::multinomial draws one Exp(1) variate per vocabulary entry instead (the Gumbel trick),
  // which at [64, 49152] costs more than the rest of the step's sampling together.
  const int64_t N = processed.size(0), V = processed.size(-1);
  auto cdf = processed.softmax(-1).cumsum(-1);  // [N, V], non-decreasing
  auto total = cdf.narrow(-1, V - 1, 1);       // ~1
  auto u = torch::rand({N, 1}, gen, cdf.options()) * total;
  // Keep u strictly below the total (rand * total can round up to it), so the search always ends on
  // a token that carries mass.
  u = torch::minimum(u, torch::nextafter(total, torch::zeros_like(total)));
  // right=true: the first index whose cdf exceeds u, so a zero-probability (filtered) token, whose
  // cdf equals its predecessor's, is never chosen.
  return torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true).squeeze(-1);
}

torch::Tensor draw_tokens(const torch::Tensor& processed, double temperature, const torch::Tensor& uniforms) {
  if (temperature == 0.0) return processed.argmax(-1);
  const int64_t N = processed.size(0), V = processed.size(-1);
  GRPO_REQUIRE(uniforms.dim() == 1 && uniforms.size(0) == N, "draw_tokens: uniforms must be [", N, "], got ",
               uniforms.sizes());
  auto cdf = processed.softmax(-1).cumsum(-1);  // [N, V]
  auto total = cdf.narrow(-1, V - 1, 1);       // [N, 1], ~1
  auto u = uniforms.to(cdf.device(), cdf.scalar_type()).view({N, 1}) * total;
  u = torch::minimum(u, torch::nextafter(total, torch::zeros_like(total)));  // as above
  return torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true).squeeze(-1);
}

namespace {
uint64_t mix64(uint64_t z) {  // SplitMix64 finaliser (Vigna's splitmix64.c)
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;
}  // namespace

float counter_uniform(uint64_t stream, uint64_t counter) {
  return static_cast<float>(mix64(stream + (counter + 1) * kGolden) >> 40) * 0x1.0p-24f;
}

uint64_t substream_seed(uint64_t seed, uint64_t index) { return mix64(mix64(seed + kGolden) ^ mix64(index + 2 * kGolden)); }

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  auto x = logits.to(torch::kFloat32);
  if (temperature != 0.0 && temperature != 1.0) x = x / temperature;
  // log_softmax(x)[t] = x[t] - logsumexp(x), without materialising the [N, V] log-softmax.
  return x.gather(-1, tokens.view({-1, 1})).squeeze(-1) - x.logsumexp(-1);
}

at::Generator make_generator(torch::Device device, uint64_t seed) {
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

}  // namespace grpo::rollout
