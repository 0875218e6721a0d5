#include "step_sampler.h"

#include <tuple>

#include "grpo/rollout/sampling.h"

namespace grpo::rollout {

StepSampler::StepSampler(const SamplingParams& params, int64_t model_vocab, int64_t tok_vocab)
    : params_(&params), tok_vocab_(tok_vocab), model_vocab_(model_vocab) {
  const int64_t V = model_vocab;
  unfiltered_ = params.repetition_penalty == 1.0 && (params.top_k <= 0 || params.top_k >= V) && params.top_p >= 1.0 &&
                params.min_p <= 0.0 && tok_vocab >= V;
}

StepDraws StepSampler::operator()(const torch::Tensor& logits, const torch::Tensor& seen,
                                  const std::vector<uint64_t>& streams, const std::vector<uint64_t>& counters) const {
  const double T = params_->temperature;
  auto processed = process_logits(logits, *params_, seen);  // [n, V] float32
  // Ids past the tokenizer's vocabulary (padded embedding matrices) are never drawn.
  if (tok_vocab_ < model_vocab_) processed = processed.narrow(-1, 0, tok_vocab_);
  torch::Tensor ids, lps;  // [n] int64, [n] float32
  if (T == 0.0) {
    ids = processed.argmax(-1);
  } else {
    auto u = torch::empty({static_cast<int64_t>(streams.size())}, torch::kFloat32);
    auto* up = u.data_ptr<float>();
    for (size_t n = 0; n < streams.size(); ++n) up[n] = counter_uniform(streams[n], counters[n]);
    torch::Tensor lse;
    std::tie(ids, lse) = draw_tokens_with_lse(processed, u);
    // processed is logits / T itself: the draw's logsumexp gives the logprob for free.
    if (unfiltered_) lps = processed.gather(-1, ids.view({-1, 1})).squeeze(-1) - lse;
  }
  if (!lps.defined()) lps = sampled_token_logprobs(logits, ids, T);
  // One device->host copy per step (float64 holds both the int64 ids < 2^53 and the float32
  // logprobs exactly).
  auto host = torch::stack({ids.to(torch::kFloat64), lps.to(torch::kFloat64)}).cpu();  // [2, n]
  auto acc = host.accessor<double, 2>();
  StepDraws out;
  const int64_t n = host.size(1);
  out.ids.resize(n);
  out.logprobs.resize(n);
  for (int64_t k = 0; k < n; ++k) {
    out.ids[k] = static_cast<int64_t>(acc[0][k]);
    out.logprobs[k] = static_cast<float>(acc[1][k]);
  }
  return out;
}

}  // namespace grpo::rollout
