// The off-policy correction (TIS/MIS) against TRL 1.16's own code (tests/train/data/
// rollout_correction_refs.json, made by scripts/make_rollout_correction_refs.py from the installed
// trl source in float64), the loss it weights, its metrics, and the sync-mode guarantees: rows of the
// current policy version get w = 1 exactly, and the rollout's log-probs of a tiny model match the
// training forward of the same weights within 1e-5 (float32, CPU).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/json_refs.h"
#include "grpo/rollout/engine.h"
#include "grpo/train/loss.h"
#include "grpo/train/rollout_correction.h"
#include "grpo/train/token_batch.h"
#include "grpo/util/error.h"
#include "rollout/fake_tokenizer.h"

namespace {

using grpo::config::ImportanceSamplingLevel;
using grpo::config::RolloutCorrection;
using namespace grpo::train;
using grpo::testing::to_tensor;
using nlohmann::json;

class OneThread : public ::testing::Environment {
 public:
  void SetUp() override { torch::set_num_threads(1); }
};
[[maybe_unused]] const auto* const kOneThread = ::testing::AddGlobalTestEnvironment(new OneThread);

const json& refs() {
  static const json j = grpo::testing::read_source_json("tests/train/data/rollout_correction_refs.json");
  return j;
}

torch::Tensor in(const char* name, torch::Dtype dt = torch::kFloat64) { return to_tensor(refs()["inputs"][name], dt); }

RolloutCorrectionOptions options_of(const json& c) {
  RolloutCorrectionOptions o;
  const std::string mode = c["mode"];
  o.mode = mode.ends_with("truncate") ? RolloutCorrection::TIS : RolloutCorrection::MIS;
  o.level = c["level"] == "token" ? ImportanceSamplingLevel::TOKEN : ImportanceSamplingLevel::SEQUENCE;
  o.clip_max = c["clip_max"];
  if (!c["clip_min"].is_null()) o.clip_min = c["clip_min"].get<double>();
  return o;
}

TEST(RolloutCorrection, RefsCoverEveryModeAndBothBoundsBite) {
  std::set<std::string> modes;
  bool low = false;
  for (const auto& c : refs()["cases"]) {
    modes.insert(c["mode"].get<std::string>());
    auto r = to_tensor(c["ratio"], torch::kFloat64);
    if (!c["clip_min"].is_null()) low |= (r == c["clip_min"].get<double>()).any().item<bool>() || (r == 0).any().item<bool>();
  }
  EXPECT_EQ(modes.size(), 4u);
  EXPECT_TRUE(low) << "no case where the lower bound truncates or masks";
}

// The weights equal TRL's importance_sampling_ratio, every mode, float64 and float32.
TEST(RolloutCorrection, WeightsMatchTrl) {
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dt == torch::kFloat64 ? 1e-12 : 2e-6;  // float32: exp of a sum of 10 rounded differences
    for (const auto& c : refs()["cases"]) {
      auto r = rollout_correction(in("old_logprobs", dt), in("sampling_logprobs", dt), in("completion_mask", dt), {},
                                  options_of(c));
      auto want = to_tensor(c["ratio"], torch::kFloat64);
      ASSERT_EQ(r.weights.sizes(), want.sizes()) << c["name"];
      EXPECT_EQ(r.weights.scalar_type(), dt);
      const double err = ((r.weights.to(torch::kFloat64) - want).abs() / want.abs().clamp_min(1.0)).max().item<double>();
      EXPECT_LT(err, tol) << c["name"] << " dtype " << dt;
    }
  }
}

// The loss with the weights equals TRL's _compute_loss with importance_sampling_ratio, and so do
// the gradients (token-level PPO ratio, grpo and dapo aggregation).
TEST(RolloutCorrection, WeightedLossMatchesTrl) {
  for (const auto& c : refs()["cases"]) {
    auto w = rollout_correction(in("old_logprobs"), in("sampling_logprobs"), in("completion_mask"), {}, options_of(c));
    for (const std::string lt : {"grpo", "dapo"}) {
      auto logp = in("logprobs").requires_grad_(true);
      LossInputs li;
      li.logprobs = logp;
      li.old_logprobs = in("old_logprobs");
      li.advantages = in("advantages");
      li.completion_mask = in("completion_mask");
      li.rollout_is_weights = w.weights;
      LossOptions o;
      o.loss_type = lt == "grpo" ? grpo::config::LossType::GRPO : grpo::config::LossType::DAPO;
      o.epsilon_low = 0.2;
      o.epsilon_high = 0.28;
      LossNormaliser n{static_cast<double>(logp.size(0)), li.completion_mask.sum().item<double>()};
      auto res = compute_loss(li, o, n);
      res.loss.backward();
      const auto& ref = c["losses"][lt];
      EXPECT_NEAR(res.loss.item<double>(), ref["loss"].get<double>(), 1e-12) << c["name"] << " " << lt;
      auto g = to_tensor(ref["grad_logprobs"], torch::kFloat64);
      EXPECT_LT((logp.grad() - g).abs().max().item<double>(), 1e-12) << c["name"] << " " << lt;
    }
  }
}

// Metrics against TRL's logged values (mismatch) and against TRL's ratio tensor (weights): TRL
// takes the mean/max over masked tokens (token level) or over every sequence (sequence level); we
// count sequences with at least one token, so the expectation leaves TRL's empty row out.
TEST(RolloutCorrection, MetricsMatchTrl) {
  const auto mask = in("completion_mask");
  const auto nonempty = mask.sum(-1) > 0;  // [B]
  for (const auto& c : refs()["cases"]) {
    const auto o = options_of(c);
    auto r = rollout_correction(in("old_logprobs"), in("sampling_logprobs"), mask, {}, o);
    OffPolicyMetrics om;
    om.add_mismatch(in("old_logprobs"), in("sampling_logprobs"), mask);
    om.add_correction(r, mask.size(0));
    StepMetrics sm;
    om.put(sm);
    const auto& tm = c["metrics"];
    EXPECT_NEAR(sm.value("logprob_mismatch/mean_abs"), tm["sampling/sampling_logp_difference/mean"].get<double>(), 1e-12);
    EXPECT_NEAR(sm.value("logprob_mismatch/max_abs"), tm["sampling/sampling_logp_difference/max"].get<double>(), 1e-12);
    const auto ratio = to_tensor(c["ratio"], torch::kFloat64);
    const auto vals = o.level == ImportanceSamplingLevel::TOKEN ? ratio.masked_select(mask.to(torch::kBool))
                                                                : ratio.squeeze(1).masked_select(nonempty);
    if (o.level == ImportanceSamplingLevel::TOKEN) {
      // Same population as TRL's metrics: compare with what TRL logged.
      EXPECT_NEAR(sm.value("rollout_correction/weight_mean"), tm["sampling/importance_sampling_ratio/mean"].get<double>(), 1e-12);
      EXPECT_NEAR(sm.value("rollout_correction/weight_max"), tm["sampling/importance_sampling_ratio/max"].get<double>(), 1e-12);
    }
    EXPECT_NEAR(sm.value("rollout_correction/weight_mean"), vals.mean().item<double>(), 1e-12) << c["name"];
    EXPECT_NEAR(sm.value("rollout_correction/weight_max"), vals.max().item<double>(), 1e-12) << c["name"];
    // Truncated: TRL's value sits on a bound; masked: TRL's value is 0 (a true ratio never is).
    const double lo = o.clip_min.value_or(-1.0);
    const auto clipped = o.mode == RolloutCorrection::TIS ? (vals == o.clip_max) | (vals == lo) : vals == 0;
    EXPECT_NEAR(sm.value("rollout_correction/clipped_frac"), clipped.to(torch::kFloat64).mean().item<double>(), 1e-12)
        << c["name"];
    EXPECT_EQ(sm.value("rollout_correction/rows"), static_cast<double>(mask.size(0)));
  }
}

// Rows of the current policy version get exactly 1, whatever their log-probs; the others keep
// TRL's ratio. With no stale row the loss and its gradient are bit-identical to no correction.
TEST(RolloutCorrection, CurrentVersionRowsGetExactlyOne) {
  const auto& c = refs()["cases"][1];  // token_truncate with both bounds: every weight moves
  auto stale = torch::tensor({true, false, true, false, false, true});
  auto r = rollout_correction(in("old_logprobs"), in("sampling_logprobs"), in("completion_mask"), stale, options_of(c));
  auto want = to_tensor(c["ratio"], torch::kFloat64);
  for (int64_t i = 0; i < 6; ++i) {
    if (stale[i].item<bool>()) EXPECT_TRUE(r.weights[i].equal(want[i])) << "row " << i;
    else EXPECT_TRUE((r.weights[i] == 1.0).all().item<bool>()) << "row " << i;
  }
  for (const auto& cc : refs()["cases"]) {
    auto none = rollout_correction(in("old_logprobs"), in("sampling_logprobs"), in("completion_mask"),
                                   torch::zeros({6}, torch::kBool), options_of(cc));
    EXPECT_TRUE((none.weights == 1.0).all().item<bool>()) << cc["name"];
    EXPECT_EQ(none.count.item<double>(), 0.0);
  }
}

TEST(RolloutCorrection, NoneComputesNoWeightsAndBadShapesThrow) {
  RolloutCorrectionOptions o;
  o.mode = RolloutCorrection::NONE;
  auto r = rollout_correction(in("old_logprobs"), in("sampling_logprobs"), in("completion_mask"), {}, o);
  EXPECT_FALSE(r.weights.defined());
  o.mode = RolloutCorrection::TIS;
  EXPECT_THROW(rollout_correction(in("old_logprobs"), in("sampling_logprobs").narrow(1, 0, 3), in("completion_mask"), {}, o),
               grpo::InputError);
  EXPECT_THROW(rollout_correction(in("old_logprobs"), in("sampling_logprobs"), in("completion_mask"), torch::ones({2}, torch::kBool), o),
               grpo::InputError);
  LossInputs li;
  li.logprobs = in("logprobs");
  li.advantages = in("advantages");
  li.completion_mask = in("completion_mask");
  li.rollout_is_weights = torch::ones({6, 3});
  EXPECT_THROW(compute_loss(li, LossOptions{}, LossNormaliser{6, 10}), grpo::InputError);
}

TEST(RolloutCorrection, OptionsFromConfigDefaultsAreTrls) {
  grpo::config::GrpoConfig g;
  auto o = RolloutCorrectionOptions::from_config(g);
  EXPECT_EQ(o.mode, RolloutCorrection::MIS);  // TRL: vllm_importance_sampling_mode = "sequence_mask"
  EXPECT_EQ(o.level, ImportanceSamplingLevel::SEQUENCE);
  EXPECT_EQ(o.clip_max, 3.0);  // vllm_importance_sampling_clip_max
  EXPECT_FALSE(o.clip_min.has_value());
}

// Sync mode on a tiny random Llama (float32, CPU): the engine's sampled-token log-probs (KV-cache
// decode) against the training forward of the same weights (completion_logprobs, full sequence).
// The gap is rounding only (often exactly 0: docs/training.md): mean |diff| below 1e-5. Version-matched rows then get w = 1 exactly and
// the loss is bit-identical to the uncorrected one; were the correction applied anyway, its weights
// would be within 1e-4 of 1.
TEST(RolloutCorrection, SyncModeMismatchBelow1e5AndCorrectionIsExactlyOne) {
  grpo::model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 64;
  s.intermediate_size = 160;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 16;
  s.max_position_embeddings = 64;
  s.initializer_range = 0.1;
  torch::manual_seed(99);
  grpo::model::Transformer m(s);
  m->eval();
  grpo::rollout::testing::FakeTokenizer tok;
  grpo::rollout::SamplingParams sp;
  sp.max_completion_length = 12;
  sp.temperature = 1.0;
  grpo::rollout::RolloutEngine eng(m, tok, sp);
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7}, {200, 13, 40}};
  auto comps = eng.generate(prompts, 2, uint64_t{7});
  std::vector<const std::vector<int64_t>*> ps, cs;
  std::vector<const std::vector<float>*> ls;
  for (const auto& c : comps) {
    ps.push_back(&prompts[static_cast<size_t>(c.prompt_index)]);
    cs.push_back(&c.token_ids);
    ls.push_back(&c.logprobs);
  }
  auto tb = make_token_batch(ps, cs, 0, torch::kCPU);
  auto behaviour = rollout_logprob_matrix(ls, tb.completion_ids.size(1));  // [B, C] float32
  auto lp = completion_logprobs(m, tb, 1.0);
  ASSERT_GT(tb.completion_mask.sum().item<double>(), 20.0);

  OffPolicyMetrics om;
  om.add_mismatch(lp.logprobs.detach(), behaviour, tb.completion_mask);
  StepMetrics sm;
  om.put(sm);
  EXPECT_LT(sm.value("logprob_mismatch/mean_abs"), 1e-5);
  EXPECT_LT(sm.value("logprob_mismatch/k3_kl"), 1e-10);
  EXPECT_LT(sm.value("logprob_mismatch/max_abs"), 1e-4);
  EXPECT_LT(sm.value("logprob_mismatch/probs_diff_max"), 1e-4);

  const int64_t B = tb.completion_ids.size(0);
  for (auto level : {ImportanceSamplingLevel::TOKEN, ImportanceSamplingLevel::SEQUENCE}) {
    RolloutCorrectionOptions o;
    o.mode = RolloutCorrection::TIS;
    o.level = level;
    auto all = rollout_correction(lp.logprobs.detach(), behaviour, tb.completion_mask, {}, o);
    EXPECT_LT((all.weights - 1.0).abs().max().item<double>(), 1e-4);
    auto sync = rollout_correction(lp.logprobs.detach(), behaviour, tb.completion_mask, torch::zeros({B}, torch::kBool), o);
    EXPECT_TRUE((sync.weights == 1.0).all().item<bool>());

    auto loss_of = [&](const torch::Tensor& w) {
      auto x = lp.logprobs.detach().clone().requires_grad_(true);
      LossInputs li;
      li.logprobs = x;
      li.advantages = torch::linspace(-1.0, 1.0, B);
      li.completion_mask = tb.completion_mask;
      li.rollout_is_weights = w;
      auto r = compute_loss(li, LossOptions{}, LossNormaliser{double(B), tb.completion_mask.sum().item<double>()});
      r.loss.backward();
      return std::make_pair(r.loss.detach(), x.grad());
    };
    auto [l0, g0] = loss_of({});
    auto [l1, g1] = loss_of(sync.weights);
    EXPECT_TRUE(l0.equal(l1));
    EXPECT_TRUE(g0.equal(g1));
  }
}

}  // namespace
