#include "grpo/rollout/sampling.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

torch::Tensor draw_tokens(const torch::Tensor& processed, double temperature, const torch::Tensor& uniforms) {
  if (temperature == 0.0) return processed.argmax(-1);
  // Inverse-CDF sampling: one uniform per row and a binary search in the cumulative distribution.
  // torch::multinomial draws one Exp(1) variate per vocabulary entry instead (the Gumbel trick),
  // which at [64, 49152] costs more than the rest of the step's sampling together.
  const int64_t N = processed.size(0), V = processed.size(-1);
  GRPO_REQUIRE(uniforms.dim() == 1 && uniforms.size(0) == N, "draw_tokens: uniforms must be [", N, "], got ",
               uniforms.sizes());
  auto cdf = processed.softmax(-1).cumsum(-1);  // [N, V]
  auto total = cdf.narrow(-1, V - 1, 1);       // [N, 1], ~1
  auto u = uniforms.to(cdf.device(), cdf.scalar_type()).view({N, 1}) * total;
  // Keep u strictly below the total (u * total can round up to it), so the search always ends on
  // a token that carries mass.
  u = torch::minimum(u, torch::nextafter(total, torch::zeros_like(total)));
  // right=true: the first index whose cdf exceeds u, so a zero-probability (filtered) token, whose
  // cdf equals its predecessor's, is never chosen.
  return torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true).squeeze(-1);
}

namespace {

constexpr int64_t kBlock = 512;  // scan block: block sums first, then one block element by element

// Sum of n floats with 8 independent accumulators (the order is fixed, so results are reproducible).
float block_sum(const float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> draw_tokens_with_lse(const torch::Tensor& processed,
                                                             const torch::Tensor& uniforms) {
  GRPO_REQUIRE(processed.dim() == 2 && uniforms.dim() == 1 && uniforms.size(0) == processed.size(0),
               "draw_tokens_with_lse: processed must be [N, V] and uniforms [N], got ", processed.sizes(), " and ",
               uniforms.sizes());
  const int64_t N = processed.size(0), V = processed.size(1);
  if (!processed.device().is_cpu() || processed.scalar_type() != torch::kFloat32) {
    return {draw_tokens(processed, 1.0, uniforms), processed.to(torch::kFloat32).logsumexp(-1)};
  }
  auto x = processed.contiguous();
  auto m = std::get<0>(x.max(-1, /*keepdim=*/true));  // [N, 1]
  // A row of -inf everywhere cannot occur after process_logits (top-k/top-p/min-p keep the top
  // token), but keep exp finite if it did.
  m = torch::where(torch::isinf(m), torch::zeros_like(m), m);
  auto e = (x - m).exp_();  // [N, V], MKL VML exp
  auto u = uniforms.to(torch::kCPU, torch::kFloat32).contiguous();
  auto ids = torch::empty({N}, torch::kInt64);
  auto lse = torch::empty({N}, torch::kFloat32);
  const float* ep = e.data_ptr<float>();
  const float* mp = m.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  int64_t* ip = ids.data_ptr<int64_t>();
  float* lp = lse.data_ptr<float>();
  const int64_t nblocks = (V + kBlock - 1) / kBlock;
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> sums(static_cast<size_t>(nblocks));
    for (int64_t n = begin; n < end; ++n) {
      const float* row = ep + n * V;
      double total = 0.0;  // float64 over ~100 block sums: the total is exact to float rounding
      for (int64_t b = 0; b < nblocks; ++b) {
        sums[b] = block_sum(row + b * kBlock, std::min(kBlock, V - b * kBlock));
        total += sums[b];
      }
      lp[n] = mp[n] + static_cast<float>(std::log(total));
      // First token whose cumulative mass exceeds u * total (searchsorted right=true): a token of
      // zero mass (filtered, exp(-inf) = 0) never ends the search.
      const double target = static_cast<double>(up[n]) * total;
      double acc = 0.0;
      int64_t b = 0;
      while (b < nblocks - 1 && acc + sums[b] <= target) acc += sums[b++];
      int64_t t = b * kBlock, stop = std::min(V, t + kBlock), last_positive = -1;
      for (; t < stop; ++t) {
        if (row[t] > 0.0f) last_positive = t;
        acc += row[t];
        if (row[t] > 0.0f && acc > target) break;
      }
      if (t == stop) {
        // Rounding left the target at or past the accumulated total: take the last token with mass.
        if (last_positive < 0)
          for (int64_t k = V - 1; k >= 0; --k)
            if (row[k] > 0.0f) {
              last_positive = k;
              break;
            }
        t = last_positive;
      }
      ip[n] = t;
    }
  });
  return {ids, lse};
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

torch::Tensor sampled_token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  auto x = logits.to(torch::kFloat32);
  if (temperature != 0.0 && temperature != 1.0) x = x / temperature;
  // log_softmax(x)[t] = x[t] - logsumexp(x), without materialising the [N, V] log-softmax.
  return x.gather(-1, tokens.view({-1, 1})).squeeze(-1) - x.logsumexp(-1);
}

}  // namespace grpo::rollout
