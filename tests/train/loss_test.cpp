// The GRPO loss against TRL 1.16's GRPOTrainer._compute_loss (tests/train/data/loss_refs.json, made
// by scripts/make_loss_refs.py in float64), gradient accumulation, and the mask edge cases.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/json_refs.h"
#include "grpo/train/loss.h"
#include "grpo/util/error.h"

namespace {

using grpo::config::ImportanceSamplingLevel;
using grpo::config::LossType;
using grpo::train::LossInputs;
using grpo::train::LossNormaliser;
using grpo::train::LossOptions;
using grpo::testing::to_tensor;
using nlohmann::json;

const json& refs() {
  static const json j = grpo::testing::read_source_json("tests/train/data/loss_refs.json");
  return j;
}

LossType loss_type_of(const std::string& s) {
  return s == "grpo" ? LossType::GRPO : s == "bnpo" ? LossType::BNPO : s == "dapo" ? LossType::DAPO : LossType::DR_GRPO;
}

LossOptions options_of(const json& c) {
  LossOptions o;
  o.loss_type = loss_type_of(c["loss_type"]);
  o.importance_sampling_level =
      c["importance_sampling_level"] == "token" ? ImportanceSamplingLevel::TOKEN : ImportanceSamplingLevel::SEQUENCE;
  o.epsilon_low = c["epsilon"];
  o.epsilon_high = c["epsilon_high"];
  o.beta = c["beta"];
  o.entropy_coef = c["entropy_coef"];
  o.max_completion_length = c["max_completion_length"];
  return o;
}

struct Batch {
  torch::Tensor logp, old, ref, ent, mask, adv;
};

Batch inputs(torch::Dtype dt) {
  const auto& in = refs()["loss_inputs"];
  return {to_tensor(in["logprobs"], dt), to_tensor(in["old_logprobs"], dt), to_tensor(in["ref_logprobs"], dt),
          to_tensor(in["entropies"], dt),  to_tensor(in["completion_mask"], dt), to_tensor(in["advantages"], dt)};
}

// Runs the loss on rows [lo, hi) of the batch with the given (global) normaliser; returns the loss
// and leaves gradients in logp/ent.
double run_rows(const Batch& b, torch::Tensor& logp, torch::Tensor& ent, const LossOptions& o,
                const LossNormaliser& n, int64_t lo, int64_t hi, grpo::train::LossMetrics* m = nullptr) {
  LossInputs in;
  in.logprobs = logp.slice(0, lo, hi);
  in.old_logprobs = b.old.slice(0, lo, hi);
  in.ref_logprobs = b.ref.slice(0, lo, hi);
  in.entropies = ent.slice(0, lo, hi);
  in.completion_mask = b.mask.slice(0, lo, hi);
  in.advantages = b.adv.slice(0, lo, hi);
  auto r = grpo::train::compute_loss(in, o, n);
  r.loss.backward();
  if (m) *m = r.metrics;
  return r.loss.item<double>();
}

double max_rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  // Relative to the largest reference entry, so that entries that are exactly 0 (masked tokens)
  // must be 0 to the same precision.
  const double scale = std::max(want.abs().max().item<double>(), 1e-30);
  return (got.to(torch::kFloat64) - want).abs().max().item<double>() / scale;
}

void check_against_trl(torch::Dtype dt, double tol) {
  const auto b = inputs(dt);
  const int64_t B = b.logp.size(0);
  for (const auto& c : refs()["loss_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto logp = b.logp.clone().requires_grad_(true);
    auto ent = b.ent.clone().requires_grad_(true);
    // One rank, one micro-batch: the normalisers are the batch's own counts (TRL's num_items_in_batch).
    LossNormaliser n{static_cast<double>(B), b.mask.sum().item<double>()};
    grpo::train::LossMetrics m;
    const double loss = run_rows(b, logp, ent, options_of(c), n, 0, B, &m);
    const double want = c["loss"];
    EXPECT_NEAR(loss, want, tol * std::abs(want)) << "loss";
    EXPECT_LT(max_rel_err(logp.grad(), to_tensor(c["grad_logprobs"], torch::kFloat64)), tol);
    if (c["entropy_coef"].get<double>() != 0.0)
      EXPECT_LT(max_rel_err(ent.grad(), to_tensor(c["grad_entropies"], torch::kFloat64)), tol);
    // TRL's logged metrics (means over masked tokens, or over sequences for GSPO clip ratios).
    const auto& tm = c["metrics"];
    auto v = [](const torch::Tensor& t) { return t.item<double>(); };  // LossMetrics are [] tensors
    EXPECT_NEAR(v(m.clip_low_sum) / v(m.clip_count), tm["clip_ratio/low_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(v(m.clip_high_sum) / v(m.clip_count), tm["clip_ratio/high_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(v(m.clip_region_sum) / v(m.clip_count), tm["clip_ratio/region_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(v(m.entropy_sum) / v(m.token_count), tm["entropy"].get<double>(), 1e-6);
    if (c["beta"].get<double>() != 0.0) EXPECT_NEAR(v(m.kl_sum) / v(m.token_count), tm["kl"].get<double>(), 1e-6);
  }
}

TEST(Loss, MatchesTrlInFloat64) {
  // Same formula, same float64 arithmetic: only summation order differs, so 1e-10 relative.
  check_against_trl(torch::kFloat64, 1e-10);
}

TEST(Loss, MatchesTrlInFloat32) {
  // float32 inputs against float64 references: each term is a handful of float32 roundings (~6e-8
  // relative each) and the sums have <= 60 terms, which stays below 1e-6 relative.
  check_against_trl(torch::kFloat32, 1e-6);
}

TEST(Loss, RefsCoverEveryVariantAndClipSide) {
  // Guard against a reference file whose cases would not exercise clipping at all.
  int with_low = 0, with_high = 0, cases = 0;
  for (const auto& c : refs()["loss_cases"]) {
    ++cases;
    with_low += c["metrics"]["clip_ratio/low_mean"].get<double>() > 0;
    with_high += c["metrics"]["clip_ratio/high_mean"].get<double>() > 0;
  }
  EXPECT_EQ(cases, 24);
  EXPECT_GT(with_low, 8);
  EXPECT_GT(with_high, 8);
}

TEST(Loss, GradientAccumulationIsExactForEveryLossType) {
  // Completion lengths in the reference batch are 10, 1, 5, 0, 3, 9: micro-batches of very
  // different token counts. Splitting into k = 1, 2, 3, 6 micro-batches with the global normaliser
  // must give the same total loss and gradient (float64: only summation order differs).
  const auto b = inputs(torch::kFloat64);
  const int64_t B = b.logp.size(0);
  const LossNormaliser n{static_cast<double>(B), b.mask.sum().item<double>()};
  for (const auto& c : refs()["loss_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto o = options_of(c);
    auto logp1 = b.logp.clone().requires_grad_(true), ent1 = b.ent.clone().requires_grad_(true);
    const double whole = run_rows(b, logp1, ent1, o, n, 0, B);
    for (int64_t k : {2, 3, 6}) {
      auto logp = b.logp.clone().requires_grad_(true), ent = b.ent.clone().requires_grad_(true);
      double total = 0;
      for (int64_t lo = 0; lo < B; lo += B / k) total += run_rows(b, logp, ent, o, n, lo, lo + B / k);
      EXPECT_NEAR(total, whole, 1e-12 * std::max(1.0, std::abs(whole))) << "k=" << k;
      EXPECT_LT(max_rel_err(logp.grad(), logp1.grad()), 1e-12) << "k=" << k;
      if (o.entropy_coef != 0) EXPECT_LT(max_rel_err(ent.grad(), ent1.grad()), 1e-12) << "k=" << k;
    }
  }
}

TEST(Loss, GradientAccumulationKEquals1To4Float32) {
  // k = 1, 2, 4 micro-batches over 8 sequences of lengths 0..12, split unevenly, float32 as in
  // training, for every loss_type at token and sequence level; 1e-6 relative (float32 sums of <100
  // terms, each rounding ~6e-8).
  torch::manual_seed(3);
  const int64_t B = 8, T = 12;
  auto mask = torch::zeros({B, T});
  const int64_t lens[B] = {12, 1, 7, 0, 12, 3, 11, 2};
  for (int64_t i = 0; i < B; ++i) mask.index_put_({i, torch::indexing::Slice(0, lens[i])}, 1.0);
  Batch b{-torch::rand({B, T}) * 3, {}, {}, torch::rand({B, T}), mask, torch::randn({B})};
  b.old = b.logp + (torch::rand({B, T}) - 0.5) * 0.8;
  b.ref = b.logp + (torch::rand({B, T}) - 0.5) * 0.6;
  const LossNormaliser n{static_cast<double>(B), mask.sum().item<double>()};
  const std::vector<std::vector<int64_t>> splits = {{0, 8}, {0, 3, 8}, {0, 1, 4, 6, 8}};
  for (auto lvl : {ImportanceSamplingLevel::TOKEN, ImportanceSamplingLevel::SEQUENCE}) {
    for (auto lt : {LossType::GRPO, LossType::BNPO, LossType::DAPO, LossType::DR_GRPO}) {
      LossOptions o;
      o.loss_type = lt;
      o.importance_sampling_level = lvl;
      o.beta = 0.04;
      o.entropy_coef = 0.01;
      o.epsilon_high = 0.28;
      o.max_completion_length = T;
      auto logp1 = b.logp.clone().requires_grad_(true), ent1 = b.ent.clone().requires_grad_(true);
      const double whole = run_rows(b, logp1, ent1, o, n, 0, B);
      for (const auto& bounds : splits) {
        const auto k = bounds.size() - 1;
        auto logp = b.logp.clone().requires_grad_(true), ent = b.ent.clone().requires_grad_(true);
        double total = 0;
        for (size_t j = 0; j < k; ++j) total += run_rows(b, logp, ent, o, n, bounds[j], bounds[j + 1]);
        SCOPED_TRACE(grpo::str("loss_type ", static_cast<int>(lt), " level ", static_cast<int>(lvl), " k=", k));
        EXPECT_NEAR(total, whole, 1e-6 * std::abs(whole));
        EXPECT_LT(max_rel_err(logp.grad(), logp1.grad().to(torch::kFloat64)), 1e-6);
        EXPECT_LT(max_rel_err(ent.grad(), ent1.grad().to(torch::kFloat64)), 1e-6);
      }
    }
  }
}

LossInputs simple_inputs(torch::Tensor logp, torch::Tensor mask, torch::Tensor adv) {
  LossInputs in;
  in.logprobs = logp;
  in.completion_mask = mask;
  in.advantages = adv;
  return in;
}

TEST(Loss, OnPolicyValueIsMinusMeanAdvantage) {
  // old = logp (num_iterations = 1): rho = 1, so every token's loss is -A_i and the gradient of token
  // t of sequence i is -A_i / norm (d rho / d logp = rho = 1). Hand-computed for dapo and grpo.
  auto logp = torch::tensor({{-1.0, -2.0, -3.0}, {-0.5, -0.1, -9.0}}, torch::kFloat64).requires_grad_(true);
  auto mask = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kFloat64);
  auto adv = torch::tensor({0.5, -2.0}, torch::kFloat64);
  LossOptions o;
  o.loss_type = LossType::DAPO;
  auto r = grpo::train::compute_loss(simple_inputs(logp, mask, adv), o, {2, 4});
  EXPECT_DOUBLE_EQ(r.loss.item<double>(), -(3 * 0.5 - 2.0) / 4);  // -(sum of A over tokens) / 4 tokens
  r.loss.backward();
  auto want = torch::tensor({{-0.125, -0.125, -0.125}, {0.5, 0.0, 0.0}}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(logp.grad(), want, 0, 1e-15));
  o.loss_type = LossType::GRPO;
  r = grpo::train::compute_loss(simple_inputs(logp.detach(), mask, adv), o, {2, 4});
  EXPECT_DOUBLE_EQ(r.loss.item<double>(), -(0.5 - 2.0) / 2);  // mean of per-sequence means
}

// grpo.log_kl: with beta = 0, reference log-probs only feed the KL metric. The loss and its
// gradient are bit-identical to the run without them; kl_sum is the k3 estimate by hand.
TEST(Loss, LogKlWithBetaZeroIsMonitoringOnly) {
  auto logp = torch::tensor({{-1.0, -2.0, -3.0}, {-0.5, -0.1, -9.0}}, torch::kFloat64);
  auto mask = torch::tensor({{1.0, 1.0, 0.0}, {1.0, 0.0, 0.0}}, torch::kFloat64);
  auto ref = torch::tensor({{-1.5, -1.0, -7.0}, {-0.25, -4.0, -1.0}}, torch::kFloat64);
  auto adv = torch::tensor({0.7, -1.3}, torch::kFloat64);
  LossOptions o;
  o.loss_type = LossType::DAPO;
  auto a_in = logp.clone().requires_grad_(true), b_in = logp.clone().requires_grad_(true);
  auto a = grpo::train::compute_loss(simple_inputs(a_in, mask, adv), o, {2, 3});
  auto with_ref = simple_inputs(b_in, mask, adv);
  with_ref.ref_logprobs = ref;
  auto b = grpo::train::compute_loss(with_ref, o, {2, 3});
  a.loss.backward();
  b.loss.backward();
  EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
  EXPECT_TRUE(torch::equal(a_in.grad(), b_in.grad()));
  EXPECT_EQ(a.metrics.kl_sum.item<double>(), 0.0);
  auto k3 = [](double r, double l) { return std::exp(r - l) - (r - l) - 1.0; };
  double want = k3(-1.5, -1.0) + k3(-1.0, -2.0) + k3(-0.25, -0.5);  // the three unmasked tokens
  EXPECT_NEAR(b.metrics.kl_sum.item<double>(), want, 1e-14);
}

TEST(Loss, EmptyAndTruncatedCompletionsContributeNothing) {
  // Row 1 is an empty completion (mask all 0) with -inf log-probs and NaN old log-probs in its
  // padding: loss and gradient stay finite and its gradient is exactly 0.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  auto logp = torch::tensor({{-1.0, -2.0}, {-inf, -inf}}, torch::kFloat64).requires_grad_(true);
  auto old = torch::tensor({{-1.1, -1.9}, {nan, -inf}}, torch::kFloat64);
  auto ref = torch::tensor({{-1.0, -2.5}, {nan, nan}}, torch::kFloat64);
  auto mask = torch::tensor({{1.0, 1.0}, {0.0, 0.0}}, torch::kFloat64);
  auto adv = torch::tensor({1.0, -1.0}, torch::kFloat64);
  for (auto lt : {LossType::GRPO, LossType::BNPO, LossType::DAPO, LossType::DR_GRPO}) {
    for (auto lvl : {ImportanceSamplingLevel::TOKEN, ImportanceSamplingLevel::SEQUENCE}) {
      LossOptions o;
      o.loss_type = lt;
      o.importance_sampling_level = lvl;
      o.beta = 0.1;
      o.max_completion_length = 2;
      auto in = simple_inputs(logp, mask, adv);
      in.old_logprobs = old;
      in.ref_logprobs = ref;
      auto r = grpo::train::compute_loss(in, o, {2, 2});
      ASSERT_TRUE(std::isfinite(r.loss.item<double>()));
      logp.mutable_grad() = torch::Tensor();
      r.loss.backward();
      EXPECT_TRUE(torch::isfinite(logp.grad()).all().item<bool>());
      EXPECT_EQ(logp.grad()[1].abs().sum().item<double>(), 0.0);
      EXPECT_EQ(r.metrics.token_count.item<double>(), 2.0);
    }
  }
  // A non-finite old log-prob inside the mask drops that token only.
  auto old2 = torch::tensor({{-1.1, nan}, {-1.0, -1.0}}, torch::kFloat64);
  auto in = simple_inputs(logp.detach(), mask, adv);
  in.old_logprobs = old2;
  auto r = grpo::train::compute_loss(in, LossOptions{}, {2, 1});
  EXPECT_EQ(r.metrics.token_count.item<double>(), 1.0);
  // Token 0: rho = exp(0.1) = 1.105 < 1.2, A = 1: loss = -1.105 / 1 token.
  EXPECT_NEAR(r.loss.item<double>(), -std::exp(0.1), 1e-12);
}

TEST(Loss, MaskTruncatedZeroesRowsOnlyWhenOn) {
  // Row 0 ended with EOS (id 2), row 1 hit the length limit (truncated).
  auto mask = torch::tensor({{1.f, 1.f, 0.f, 0.f}, {1.f, 1.f, 1.f, 1.f}});
  auto truncated = torch::tensor({false, true});
  auto masked = grpo::train::mask_truncated(mask, truncated);
  EXPECT_TRUE(torch::equal(masked, torch::tensor({{1.f, 1.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}})));
  // With mask_truncated_completions off the truncated row trains; on, its gradient is 0 and the
  // loss is that of row 0 alone.
  auto logp = torch::full({2, 4}, -1.0, torch::kFloat64).requires_grad_(true);
  auto adv = torch::tensor({1.0, 2.0}, torch::kFloat64);
  LossOptions o;
  o.loss_type = LossType::GRPO;
  auto off = grpo::train::compute_loss(simple_inputs(logp, mask, adv), o, {2, 6});
  EXPECT_DOUBLE_EQ(off.loss.item<double>(), -(1.0 + 2.0) / 2);
  auto on = grpo::train::compute_loss(simple_inputs(logp, masked, adv), o, {2, 2});
  EXPECT_DOUBLE_EQ(on.loss.item<double>(), -1.0 / 2);
  on.loss.backward();
  EXPECT_EQ(logp.grad()[1].abs().sum().item<double>(), 0.0);
  // Bool masks work the same.
  auto bmask = grpo::train::mask_truncated(mask.to(torch::kBool), truncated);
  EXPECT_TRUE(torch::equal(bmask.to(torch::kFloat32), masked));
}

TEST(Loss, LogRatioIsClampedBeforeExp) {
  // A log ratio of 1000 would overflow exp; it is clamped to 20 (rho = e^20), still finite.
  auto logp = torch::tensor({{0.0}}, torch::kFloat32).requires_grad_(true);
  auto in = simple_inputs(logp, torch::ones({1, 1}), torch::tensor({-1.0f}));
  in.old_logprobs = torch::tensor({{-1000.0f}});
  auto r = grpo::train::compute_loss(in, LossOptions{}, {1, 1});
  EXPECT_FLOAT_EQ(r.loss.item<float>(), std::exp(20.0f));  // -min(rho*A, 1.2*A) with A = -1
  EXPECT_EQ(r.metrics.clip_region_sum.item<double>(), 0.0);
}

TEST(Loss, BadInputsAreClearErrors) {
  auto logp = torch::zeros({2, 3});
  auto mask = torch::ones({2, 3});
  auto adv = torch::zeros({2});
  LossOptions o;
  EXPECT_THROW(grpo::train::compute_loss(simple_inputs(logp, torch::ones({2, 4}), adv), o, {2, 6}), grpo::InputError);
  EXPECT_THROW(grpo::train::compute_loss(simple_inputs(logp, mask, torch::zeros({3})), o, {2, 6}), grpo::InputError);
  o.beta = 0.1;
  try {
    grpo::train::compute_loss(simple_inputs(logp, mask, adv), o, {2, 6});
    FAIL();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ref_logprobs are required when beta != 0"), std::string::npos);
  }
  o.beta = 0;
  o.loss_type = LossType::GRPO;
  EXPECT_THROW(grpo::train::compute_loss(simple_inputs(logp, mask, adv), o, {0, 6}), grpo::InputError);
  o.entropy_coef = 0.1;
  EXPECT_THROW(grpo::train::compute_loss(simple_inputs(logp, mask, adv), o, {2, 6}), grpo::InputError);
}

TEST(Loss, OptionsFromConfigDefaultEpsilonHigh) {
  grpo::config::GrpoConfig g;
  g.epsilon = 0.15;
  auto o = LossOptions::from_config(g, 128);
  EXPECT_EQ(o.epsilon_high, 0.15);
  g.epsilon_high = 0.28;
  EXPECT_EQ(LossOptions::from_config(g, 128).epsilon_high, 0.28);
  EXPECT_EQ(o.max_completion_length, 128);
}

}  // namespace
