#include "grpo/train/loss.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::train {

LossOptions LossOptions::from_config(const config::GrpoConfig& g, int64_t max_completion_length) {
  LossOptions o;
  o.loss_type = g.loss_type;
  o.importance_sampling_level = g.importance_sampling_level;
  o.epsilon_low = g.epsilon;
  o.epsilon_high = g.epsilon_high.value_or(g.epsilon);
  o.beta = g.beta;
  o.entropy_coef = g.entropy_coef;
  o.max_completion_length = max_completion_length;
  return o;
}

namespace {

void require_same_shape(const torch::Tensor& t, const torch::Tensor& ref, const char* name) {
  GRPO_REQUIRE(t.sizes() == ref.sizes(), "loss: ", name, " must have the shape of logprobs ", ref.sizes(), ", got ",
               t.sizes());
}

// Sum of x over the masked entries, [] in x's dtype (metrics only; no graph).
torch::Tensor masked_sum(const torch::Tensor& x, const torch::Tensor& m) {
  torch::NoGradGuard ng;
  if (x.size(-1) == 1 && m.size(-1) != 1) return x.detach().sum();
  return (x.detach() * m).sum();
}

}  // namespace

LossResult compute_loss(const LossInputs& in, const LossOptions& opt, const LossNormaliser& norm) {
  using config::LossType;
  GRPO_REQUIRE(in.logprobs.defined() && in.logprobs.dim() == 2, "loss: logprobs must be [B, T]");
  GRPO_REQUIRE(in.logprobs.is_floating_point(), "loss: logprobs must be floating point, got ", in.logprobs.dtype());
  const auto& logp = in.logprobs;
  const int64_t B = logp.size(0);
  const auto dt = logp.scalar_type();
  GRPO_REQUIRE(in.completion_mask.defined(), "loss: completion_mask is required");
  require_same_shape(in.completion_mask, logp, "completion_mask");
  GRPO_REQUIRE(in.advantages.defined(), "loss: advantages are required");
  GRPO_REQUIRE((in.advantages.dim() == 1 && in.advantages.size(0) == B) ||
                   (in.advantages.dim() == 2 && in.advantages.sizes() == logp.sizes()),
               "loss: advantages must be [B] = [", B, "] or [B, T], got ", in.advantages.sizes());
  if (in.old_logprobs.defined()) require_same_shape(in.old_logprobs, logp, "old_logprobs");
  const bool use_kl = opt.beta != 0.0;
  if (use_kl) {
    GRPO_REQUIRE(in.ref_logprobs.defined(), "loss: ref_logprobs are required when beta != 0 (beta = ", opt.beta, ")");
    require_same_shape(in.ref_logprobs, logp, "ref_logprobs");
  }
  const bool use_entropy = opt.entropy_coef != 0.0;
  if (use_entropy) GRPO_REQUIRE(in.entropies.defined(), "loss: entropies are required when entropy_coef != 0");
  if (in.entropies.defined()) require_same_shape(in.entropies, logp, "entropies");
  const bool per_seq_norm = opt.loss_type == LossType::GRPO || opt.loss_type == LossType::DR_GRPO;
  if (per_seq_norm)
    GRPO_REQUIRE(norm.num_sequences > 0, "loss: normaliser.num_sequences must be > 0 for loss_type ",
                 config::enum_name(opt.loss_type));
  if (opt.loss_type == LossType::DR_GRPO)
    GRPO_REQUIRE(opt.max_completion_length > 0, "loss: max_completion_length must be > 0 for dr_grpo");
  GRPO_REQUIRE(opt.epsilon_low > 0 && opt.epsilon_high > 0, "loss: epsilon and epsilon_high must be > 0");

  // Effective mask: completion tokens whose old (and ref) log-prob is finite. Everything else is
  // replaced by a neutral value with torch::where, so neither the loss nor the gradient ever sees
  // a -inf or NaN from a masked position (a product with a zero mask would give 0 * inf = NaN).
  auto sel = in.completion_mask.to(torch::kBool);
  auto old = in.old_logprobs.defined() ? in.old_logprobs.to(dt) : logp.detach();
  sel = sel & torch::isfinite(old);
  torch::Tensor ref;
  if (use_kl) {
    ref = in.ref_logprobs.to(dt);
    sel = sel & torch::isfinite(ref);
  }
  const auto m = sel.to(dt);
  const auto zeros = torch::zeros_like(logp);
  const auto log_ratio = torch::where(sel, logp - torch::where(sel, old, zeros), zeros);

  torch::Tensor w;
  if (opt.importance_sampling_level == config::ImportanceSamplingLevel::TOKEN) {
    w = log_ratio;  // [B, T]
  } else {
    w = (log_ratio * m).sum(-1, true) / m.sum(-1, true).clamp_min(1.0);  // [B, 1], GSPO
  }
  const auto coef_1 = torch::exp(w.clamp(-opt.log_ratio_clamp, opt.log_ratio_clamp));
  const auto coef_2 = coef_1.clamp(1.0 - opt.epsilon_low, 1.0 + opt.epsilon_high);
  auto adv = in.advantages.to(dt);
  if (adv.dim() == 1) adv = adv.unsqueeze(1);
  auto per_token = -torch::min(coef_1 * adv, coef_2 * adv);
  if (in.rollout_is_weights.defined()) {
    // Off-policy correction pi_old / pi_behaviour (rollout_correction.h), on the policy term only,
    // as TRL: per_token_loss * importance_sampling_ratio before the KL is added. [B, T] or [B, 1].
    const auto& iw = in.rollout_is_weights;
    GRPO_REQUIRE(iw.dim() == 2 && iw.size(0) == B && (iw.size(1) == 1 || iw.size(1) == logp.size(1)),
                 "loss: rollout_is_weights must be [B, T] or [B, 1], got ", iw.sizes());
    per_token = per_token * torch::where(sel, iw.to(logp.device(), dt).detach().expand_as(logp), zeros);
  }

  torch::Tensor kl;
  if (use_kl) {
    const auto d = torch::where(sel, torch::where(sel, ref, zeros) - logp, zeros);
    kl = torch::exp(d) - d - 1.0;
    per_token = per_token + opt.beta * kl;
  }

  const auto weighted = per_token * m;  // broadcasts [B, 1] (sequence level) to [B, T]
  torch::Tensor loss;
  switch (opt.loss_type) {
    case LossType::GRPO:
      loss = (weighted.sum(-1) / m.sum(-1).clamp_min(1.0)).sum() / norm.num_sequences;
      break;
    case LossType::BNPO:
    case LossType::DAPO:
      loss = weighted.sum() / std::max(1.0, norm.num_tokens);
      break;
    case LossType::DR_GRPO:
      loss = weighted.sum() / (norm.num_sequences * static_cast<double>(opt.max_completion_length));
      break;
  }

  LossResult res;
  {
    torch::NoGradGuard ng;
    const auto is_low = ((coef_1 < 1.0 - opt.epsilon_low) & (adv < 0)).to(dt);
    const auto is_high = ((coef_1 > 1.0 + opt.epsilon_high) & (adv > 0)).to(dt);
    const auto is_region = ((is_low + is_high) > 0).to(dt);
    res.metrics.clip_low_sum = masked_sum(is_low, m);
    res.metrics.clip_high_sum = masked_sum(is_high, m);
    res.metrics.clip_region_sum = masked_sum(is_region, m);
    res.metrics.token_count = m.sum();
    res.metrics.clip_count =
        is_low.size(-1) == 1 ? torch::full({}, static_cast<double>(B), m.options()) : res.metrics.token_count;
    res.metrics.kl_sum = torch::zeros({}, m.options());
    res.metrics.entropy_sum = torch::zeros({}, m.options());
    if (use_kl) {
      res.metrics.kl_sum = masked_sum(kl, m);
    } else if (in.ref_logprobs.defined()) {
      // Monitoring only (grpo.log_kl): the same k3 estimate, never part of the loss.
      const auto ref_ok = sel & torch::isfinite(in.ref_logprobs);
      const auto d = torch::where(ref_ok, in.ref_logprobs.to(dt) - logp.detach(), zeros);
      res.metrics.kl_sum = masked_sum(torch::exp(d) - d - 1.0, ref_ok.to(dt));
    }
    if (in.entropies.defined())
      res.metrics.entropy_sum = (torch::where(sel, in.entropies.detach().to(dt), zeros)).sum();
  }
  if (use_entropy) {
    const auto ent = torch::where(sel, in.entropies.to(dt), zeros);
    loss = loss - opt.entropy_coef * (ent.sum() / std::max(1.0, norm.num_tokens));
  }
  res.loss = loss;
  return res;
}

torch::Tensor mask_truncated(const torch::Tensor& completion_mask, const torch::Tensor& truncated) {
  GRPO_REQUIRE(completion_mask.defined() && completion_mask.dim() == 2, "mask_truncated: mask must be [B, T]");
  GRPO_REQUIRE(truncated.defined() && truncated.dim() == 1 && truncated.size(0) == completion_mask.size(0),
               "mask_truncated: truncated must be [B] = [", completion_mask.size(0), "], got ",
               truncated.defined() ? truncated.sizes() : torch::IntArrayRef{});
  const auto keep = truncated.to(torch::kBool).logical_not().unsqueeze(1);
  if (completion_mask.scalar_type() == torch::kBool) return completion_mask & keep;
  return completion_mask * keep.to(completion_mask.scalar_type());
}

}  // namespace grpo::train
