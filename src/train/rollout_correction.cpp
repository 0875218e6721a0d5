#include "grpo/train/rollout_correction.h"

#include <cmath>
#include <limits>

#include "grpo/train/token_batch.h"
#include "grpo/util/error.h"

namespace grpo::train {

RolloutCorrectionOptions RolloutCorrectionOptions::from_config(const config::GrpoConfig& g) {
  RolloutCorrectionOptions o;
  o.mode = g.rollout_correction;
  o.level = g.rollout_correction_level;
  o.clip_max = g.rollout_correction_clip_max;
  o.clip_min = g.rollout_correction_clip_min;
  return o;
}

RolloutCorrectionResult rollout_correction(const torch::Tensor& old_logprobs, const torch::Tensor& behaviour_logprobs,
                                           const torch::Tensor& mask, const torch::Tensor& stale,
                                           const RolloutCorrectionOptions& opt) {
  GRPO_REQUIRE(old_logprobs.defined() && old_logprobs.dim() == 2, "rollout_correction: old log-probs must be [B, T]");
  GRPO_REQUIRE(behaviour_logprobs.sizes() == old_logprobs.sizes() && mask.sizes() == old_logprobs.sizes(),
               "rollout_correction: shapes ", old_logprobs.sizes(), ", ", behaviour_logprobs.sizes(), ", ",
               mask.sizes(), " differ");
  const int64_t B = old_logprobs.size(0);
  GRPO_REQUIRE(!stale.defined() || (stale.dim() == 1 && stale.size(0) == B), "rollout_correction: stale must be [B] = [",
               B, "]");
  torch::NoGradGuard ng;
  const auto dt = old_logprobs.scalar_type();
  const auto dev = old_logprobs.device();
  RolloutCorrectionResult res;
  const auto zero = torch::zeros({}, old_logprobs.options());
  if (opt.mode == config::RolloutCorrection::NONE) {
    res.weight_sum = res.weight_max = res.ratio_max = res.clipped_sum = res.count = zero;
    return res;
  }
  const auto sel = mask.to(dev).to(torch::kBool);                                // [B, T]
  auto d = torch::where(sel, old_logprobs - behaviour_logprobs.to(dev, dt), torch::zeros_like(old_logprobs));
  d = torch::where(torch::isnan(d), torch::zeros_like(d), d);                    // TRL: nan_to_num(nan=0)
  const bool seq = opt.level == config::ImportanceSamplingLevel::SEQUENCE;
  const auto logr = seq ? d.sum(-1, true) : d;                                   // [B, 1] or [B, T]
  const auto r = torch::exp(logr);
  const double lo = opt.clip_min.value_or(-std::numeric_limits<double>::infinity());
  const auto outside = (r < lo) | (r > opt.clip_max);
  torch::Tensor w = opt.mode == config::RolloutCorrection::TIS
                        ? (opt.clip_min ? r.clamp(*opt.clip_min, opt.clip_max) : r.clamp_max(opt.clip_max))
                        : torch::where(outside, torch::zeros_like(r), r);
  // Rows of the current policy version: exactly 1 (header comment).
  auto rows = stale.defined() ? stale.to(dev).to(torch::kBool).view({B, 1}) : torch::ones({B, 1}, torch::TensorOptions(dev).dtype(torch::kBool));
  res.weights = torch::where(rows, w, torch::ones_like(w));

  // Metrics over the counted entries: stale rows' tokens (token) or stale rows with a token (sequence).
  const auto counted = seq ? (rows & sel.any(-1, true)) : (rows & sel);
  const auto c = counted.to(dt);
  res.count = c.sum();
  res.weight_sum = (w * c).sum();
  res.weight_max = torch::where(counted, w, torch::zeros_like(w)).max();
  res.ratio_max = torch::where(counted, torch::exp(logr.clamp(-20.0, 20.0)), torch::zeros_like(w)).max();
  res.clipped_sum = (outside & counted).to(dt).sum();
  return res;
}

namespace {

// total = max(total, x) as [] float64 on x's device (an undefined total starts at x).
void max_into(torch::Tensor& total, const torch::Tensor& x) {
  auto v = x.detach().to(torch::kFloat64);
  total = total.defined() ? torch::maximum(total, v) : v;
}

}  // namespace

void OffPolicyMetrics::add_mismatch(const torch::Tensor& old_logprobs, const torch::Tensor& behaviour_logprobs,
                                    const torch::Tensor& mask) {
  auto mm = logprob_mismatch(old_logprobs, behaviour_logprobs, mask);  // the sums, in float64
  sum_into(abs_sum_, mm.abs_sum);
  sum_into(k3_sum_, mm.k3_sum);
  sum_into(count_, mm.count);
  torch::NoGradGuard ng;
  const auto a = old_logprobs.detach().to(torch::kFloat64);                                  // [B, T]
  const auto b = behaviour_logprobs.to(a.device(), torch::kFloat64);
  const auto sel = mask.to(a.device()).to(torch::kBool);
  const auto zeros = torch::zeros_like(a);
  const auto pdiff = torch::where(sel, (a.exp() - b.exp()).abs(), zeros);
  sum_into(prob_sum_, pdiff.sum());
  max_into(prob_max_, pdiff.max());
  max_into(max_abs_, torch::where(sel, (a - b).abs(), zeros).max());
}

void OffPolicyMetrics::add_correction(const RolloutCorrectionResult& r, int64_t stale_rows) {
  if (stale_rows <= 0 || !r.weights.defined()) return;
  stale_rows_ += stale_rows;
  sum_into(w_sum_, r.weight_sum);
  sum_into(w_count_, r.count);
  sum_into(clipped_sum_, r.clipped_sum);
  max_into(w_max_, r.weight_max);
  max_into(r_max_, r.ratio_max);
}

void OffPolicyMetrics::put(StepMetrics& m) const {
  if (count_.defined()) {
    m.add_mean("logprob_mismatch/mean_abs", abs_sum_, count_);
    m.add_mean("logprob_mismatch/k3_kl", k3_sum_, count_);
    m.add_mean("logprob_mismatch/probs_diff_mean", prob_sum_, count_);
    // The maxima: one host copy for all of them.
    const auto mx = torch::stack({max_abs_, prob_max_}).cpu();
    m.add_max("logprob_mismatch/max_abs", mx[0].item<double>());
    m.add_max("logprob_mismatch/probs_diff_max", mx[1].item<double>());
  }
  if (stale_rows_ > 0) {
    m.add_mean("rollout_correction/weight_mean", w_sum_, w_count_);
    m.add_mean("rollout_correction/clipped_frac", clipped_sum_, w_count_);
    const auto mx = torch::stack({w_max_, r_max_}).cpu();
    m.add_max("rollout_correction/weight_max", mx[0].item<double>());
    m.add_max("rollout_correction/ratio_max", mx[1].item<double>());
    m.add_sum("rollout_correction/rows", static_cast<double>(stale_rows_));
  }
}

}  // namespace grpo::train
