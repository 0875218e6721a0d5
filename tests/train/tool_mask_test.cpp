// Tool-integrated rollouts on the training side: tokens a tool injected (Completion::tool_mask = 1)
// stay in the model's input but leave the loss, the KL, the entropy and every token count. The
// loss and its gradient through make_token_batch + compute_loss are compared with a float64
// reference written out by hand (DeepSeekMath eq. 3 / DAPO / Dr. GRPO term by term, loops over the
// policy's tokens only, analytic gradient), for every loss_type, with clipping, KL and entropy on.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "grpo/rollout/tools.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/train/loss.h"
#include "grpo/train/sft_response.h"
#include "grpo/train/token_batch.h"
#include "grpo/util/error.h"

namespace grpo::train {
namespace {

using config::LossType;

// Three rows: injected spans in the middle, at the end (a cut-off output), and none (empty mask).
struct Fixture {
  std::vector<std::vector<int64_t>> prompts = {{5, 6}, {7}, {8, 9, 10}};
  std::vector<std::vector<int64_t>> comps = {{11, 12, 13, 14, 15, 16, 17}, {21, 22, 23, 24, 25}, {31, 32, 33}};
  std::vector<std::vector<uint8_t>> inj = {{0, 0, 1, 1, 1, 0, 0}, {0, 1, 0, 1, 1}, {}};
  TokenBatch batch() const {
    std::vector<const std::vector<int64_t>*> ps, cs;
    std::vector<const std::vector<uint8_t>*> is;
    for (size_t i = 0; i < prompts.size(); ++i) ps.push_back(&prompts[i]), cs.push_back(&comps[i]), is.push_back(&inj[i]);
    return make_token_batch(ps, cs, /*pad_id=*/0, torch::kCPU, is);
  }
  bool policy(int64_t i, int64_t j) const {
    const auto& c = comps[size_t(i)];
    if (j >= int64_t(c.size())) return false;
    const auto& m = inj[size_t(i)];
    return m.empty() || m[size_t(j)] == 0;
  }
};

TEST(ToolMask, TokenBatchKeepsInjectedTokensAsContextOnly) {
  Fixture f;
  const auto tb = f.batch();
  const int64_t P = tb.prompt_width;
  ASSERT_EQ(P, 3);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < tb.completion_mask.size(1); ++j) {
      const bool real = j < int64_t(f.comps[size_t(i)].size());
      EXPECT_EQ(tb.completion_mask[i][j].item<float>(), f.policy(i, j) ? 1.0f : 0.0f) << "row " << i << " col " << j;
      // Attention and the ids see every real token, injected or not.
      EXPECT_EQ(tb.attention_mask[i][P + j].item<int64_t>(), real ? 1 : 0) << "row " << i << " col " << j;
      if (real) {
        EXPECT_EQ(tb.input_ids[i][P + j].item<int64_t>(), f.comps[size_t(i)][size_t(j)]);
      }
    }
  // A mask of the wrong length is refused.
  std::vector<int64_t> p = {1}, c = {2, 3};
  std::vector<uint8_t> bad = {0};
  EXPECT_THROW(make_token_batch({&p}, {&c}, 0, torch::kCPU, {&bad}), InputError);
}

struct Values {
  torch::Tensor logp, old, ref, ent, adv_tok;  // [B, C] float32
};

Values random_values(int64_t B, int64_t C, uint64_t seed) {
  torch::manual_seed(seed);
  Values v;
  v.logp = -torch::rand({B, C}) * 3 - 0.05;
  v.old = v.logp + (torch::rand({B, C}) - 0.5) * 0.8;  // ratios from ~0.67 to ~1.5: some clip
  v.ref = v.logp + (torch::rand({B, C}) - 0.5) * 0.6;
  v.ent = torch::rand({B, C}) * 2;
  v.adv_tok = torch::randn({B, C});
  return v;
}

// The loss and d loss / d logp [B, C] in float64, summing over the policy's tokens only.
std::pair<double, std::vector<std::vector<double>>> reference(const Fixture& f, const Values& v, const std::vector<double>& adv,
                                                              const LossOptions& o, int64_t B, int64_t C) {
  auto at = [](const torch::Tensor& t, int64_t i, int64_t j) { return static_cast<double>(t[i][j].item<float>()); };
  double num_tokens = 0;
  std::vector<double> n(size_t(B), 0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < C; ++j)
      if (f.policy(i, j)) n[size_t(i)] += 1, num_tokens += 1;
  double loss = 0, ent_sum = 0;
  std::vector<std::vector<double>> grad(size_t(B), std::vector<double>(size_t(C), 0.0));
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < C; ++j) {
      if (!f.policy(i, j)) continue;
      const double lp = at(v.logp, i, j), A = adv[size_t(i)];
      const double rho = std::exp(lp - at(v.old, i, j));
      const double clipped = std::clamp(rho, 1 - o.epsilon_low, 1 + o.epsilon_high);
      const bool use_unclipped = rho * A <= clipped * A;  // -min(rho A, clip(rho) A)
      double term = -std::min(rho * A, clipped * A);
      double g = use_unclipped ? -rho * A : 0.0;
      const double d = at(v.ref, i, j) - lp;  // k3: exp(d) - d - 1, d/dlp = 1 - exp(d)
      term += o.beta * (std::exp(d) - d - 1);
      g += o.beta * (1 - std::exp(d));
      double w = 0;
      switch (o.loss_type) {
        case LossType::GRPO: w = 1.0 / (n[size_t(i)] * double(B)); break;
        case LossType::BNPO:
        case LossType::DAPO: w = 1.0 / num_tokens; break;
        case LossType::DR_GRPO: w = 1.0 / (double(B) * double(o.max_completion_length)); break;
      }
      loss += w * term;
      grad[size_t(i)][size_t(j)] = w * g;
      ent_sum += at(v.ent, i, j);
    }
  loss -= o.entropy_coef * ent_sum / num_tokens;
  return {loss, grad};
}

TEST(ToolMask, LossAndGradientMatchFloat64ReferenceWithoutInjectedTokens) {
  Fixture f;
  const auto tb = f.batch();
  const int64_t B = 3, C = tb.completion_mask.size(1);
  const std::vector<double> adv = {1.3, -0.7, 0.4};
  for (LossType lt : {LossType::GRPO, LossType::BNPO, LossType::DAPO, LossType::DR_GRPO}) {
    const Values v = random_values(B, C, 17);
    LossOptions o;
    o.loss_type = lt;
    o.epsilon_low = 0.2, o.epsilon_high = 0.28, o.beta = 0.04, o.entropy_coef = 0.01, o.max_completion_length = 16;
    LossNormaliser norm;
    norm.num_sequences = double(B);
    norm.num_tokens = tb.completion_mask.sum().item<double>();  // as GrpoStage counts: policy tokens only
    ASSERT_EQ(norm.num_tokens, 9.0);                            // policy tokens by hand: 4 + 2 + 3
    LossInputs in;
    in.logprobs = v.logp.clone().requires_grad_(true);
    in.old_logprobs = v.old, in.ref_logprobs = v.ref, in.entropies = v.ent;
    in.advantages = torch::tensor(std::vector<float>(adv.begin(), adv.end()));
    in.completion_mask = tb.completion_mask;
    auto res = compute_loss(in, o, norm);
    res.loss.backward();
    const auto [ref_loss, ref_grad] = reference(f, v, adv, o, B, C);
    const std::string what = std::string("loss_type ") + std::string(config::enum_name(lt));
    // float32 arithmetic on ~10 terms of size <= ~2: a few ulps of 1.
    EXPECT_NEAR(res.loss.item<double>(), ref_loss, 2e-6) << what;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < C; ++j) {
        const double g = in.logprobs.grad()[i][j].item<float>();
        if (!f.policy(i, j)) EXPECT_EQ(g, 0.0) << what << " injected/pad row " << i << " col " << j;
        else EXPECT_NEAR(g, ref_grad[size_t(i)][size_t(j)], 2e-6) << what << " row " << i << " col " << j;
      }
    EXPECT_EQ(res.metrics.token_count.item<double>(), 9.0) << what;
  }
}

TEST(ToolMask, InjectedTokensValuesDoNotChangeTheLoss) {
  Fixture f;
  const auto tb = f.batch();
  const int64_t B = 3, C = tb.completion_mask.size(1);
  const Values v = random_values(B, C, 5);
  LossOptions o;
  o.loss_type = LossType::GRPO;
  o.beta = 0.04, o.entropy_coef = 0.01, o.epsilon_high = 0.28;
  LossNormaliser norm{3.0, tb.completion_mask.sum().item<double>()};
  auto run = [&](const Values& x) {
    LossInputs in;
    in.logprobs = x.logp.clone().requires_grad_(true);
    in.old_logprobs = x.old, in.ref_logprobs = x.ref, in.entropies = x.ent, in.advantages = x.adv_tok;
    in.completion_mask = tb.completion_mask;
    auto r = compute_loss(in, o, norm);
    r.loss.backward();
    return std::make_tuple(r.loss.item<float>(), in.logprobs.grad().clone(), r.metrics.kl_sum.item<float>());
  };
  const auto [l0, g0, kl0] = run(v);
  // Anything at injected positions: the rollout's 0 log-probs, garbage, a -inf reference.
  Values w{v.logp.clone(), v.old.clone(), v.ref.clone(), v.ent.clone(), v.adv_tok.clone()};
  const auto inj = (tb.completion_mask == 0) & (tb.attention_mask.narrow(1, tb.prompt_width, C) == 1);  // [B, C]
  ASSERT_EQ(inj.sum().item<int64_t>(), 6);  // 3 + 3 injected tokens
  w.logp.masked_fill_(inj, -40.0f);
  w.old.masked_fill_(inj, 0.0f);
  w.ref.masked_fill_(inj, -std::numeric_limits<float>::infinity());
  w.ent.masked_fill_(inj, 1e6f);
  w.adv_tok.masked_fill_(inj, 1e4f);  // per-token advantages (GRPO's are per row, so never different)
  const auto [l1, g1, kl1] = run(w);
  EXPECT_EQ(l0, l1);  // bit for bit
  EXPECT_EQ(kl0, kl1);
  EXPECT_TRUE(torch::equal(g0, g1));
  // And the same values at a policy token do change it (the test can fail).
  Values u{v.logp.clone(), v.old.clone(), v.ref.clone(), v.ent.clone(), v.adv_tok.clone()};
  u.adv_tok[0][0] = u.adv_tok[0][0] + 1.0f;
  EXPECT_NE(std::get<0>(run(u)), l0);
}

std::vector<int64_t> enc(const tok::Tokenizer& t, const std::string& s) {
  auto ids = t.encode(s);
  return {ids.begin(), ids.end()};
}

TEST(ToolMask, SftResponseTokenisesToolResultsAsTheEngineInjectsThem) {
  auto t = tok::load_tokenizer(std::string(GRPO_SOURCE_DIR) + "/tests/tokenizer/data/qwen2_style/tokenizer.json");
  config::ToolsConfig tools;
  tools.enabled = {"python"};
  const std::string a = "<think>```python\nprint(123 * 456)\n```", b = "</think>\n<answer>56088</answer>";
  const std::string c = "Again: ```python\nprint(2)\n```";
  const std::string text = a + "\n<output>\n56088\n</output>\n" + c + "\n<output>\n2\n</output>\n" + b;
  const auto r = tokenize_sft_response(*t, tools, text);
  // Expected layout, assembled independently: policy segment, injected result, ...
  std::vector<int64_t> want;
  std::vector<uint8_t> mask;
  auto add = [&](const std::vector<int64_t>& ids, uint8_t m) {
    want.insert(want.end(), ids.begin(), ids.end());
    mask.insert(mask.end(), ids.size(), m);
  };
  add(enc(*t, a), 0);
  add(enc(*t, "\n<output>\n56088\n</output>\n"), 1);
  add(enc(*t, c), 0);
  add(enc(*t, "\n<output>\n2\n</output>\n"), 1);
  add(enc(*t, b), 0);
  EXPECT_EQ(r.ids, want);
  EXPECT_EQ(r.injected, mask);
  EXPECT_EQ(rollout::tool_result_tokens(*t, tools, "56088"), enc(*t, "\n<output>\n56088\n</output>\n"));
  // No drift: the ids decode to the text.
  std::vector<int32_t> ids32(r.ids.begin(), r.ids.end());
  EXPECT_EQ(t->decode(ids32), text);
  // Tools off: one encode of the whole text, nothing masked.
  const auto off = tokenize_sft_response(*t, config::ToolsConfig{}, text);
  EXPECT_EQ(off.ids, enc(*t, text));
  EXPECT_EQ(off.injected, std::vector<uint8_t>(off.ids.size(), 0));
  // An unclosed prefix is ordinary text.
  const auto open = tokenize_sft_response(*t, tools, a + "\n<output>\n5");
  EXPECT_EQ(open.ids, enc(*t, a + "\n<output>\n5"));
}

}  // namespace
}  // namespace grpo::train
