// trainer.bf16 on the CPU: the rollout engine against a bf16 training-style forward computed here,
// independently of the engine: the full sequence (no KV cache) through the plain model under
// LibTorch's own CPU bf16 autocast (the trainer's recipe, /work/notes/bf16.md and docs/training.md),
// the head's product too (torch.autocast's bf16 lm_head: bf16 logits), then the logits widened to
// float32 and log_softmax in float32 outside autocast (as HF/TRL's .float() of the logits).
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <string>

#include "fake_tokenizer.h"
#include "grpo/model/block.h"
#include "grpo/rollout/engine.h"

using namespace grpo;
using namespace grpo::rollout;
using grpo::rollout::testing::FakeTokenizer;

namespace {

class OneThread : public ::testing::Environment {
 public:
  void SetUp() override { torch::set_num_threads(1); }
};
[[maybe_unused]] const auto* const kOneThread = ::testing::AddGlobalTestEnvironment(new OneThread);

// A tiny random Llama with SmolLM2's proportions (GQA, tied embedding), large enough that its linears
// are real oneDNN products (64 -> 160 wide) and bf16 rounding is visible in the log-probs.
model::Transformer tiny_model(double init) {
  model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 64;
  s.intermediate_size = 160;
  s.num_hidden_layers = 3;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 16;
  s.max_position_embeddings = 64;
  s.tie_word_embeddings = true;
  s.initializer_range = init;
  torch::manual_seed(4321);
  model::Transformer m(s);
  m->eval();
  return m;
}

std::vector<std::vector<int64_t>> prompts() {
  return {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7}, {200, 13, 13, 40, 7, 88, 1, 9, 120, 66, 31, 2}};
}

std::vector<int64_t> concat(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  auto r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

// Logits [L, V] float32 at every position of `ids`: the forward and the head's product under CPU
// bf16 autocast when `bf16` (bf16 logits, widened to float32 after the scope).
torch::Tensor full_logits(model::Transformer& m, const std::vector<int64_t>& ids, bool bf16) {
  torch::NoGradGuard ng;
  auto x = torch::tensor(ids, torch::kInt64).view({1, -1});
  if (!bf16) return m->logits(m->forward(x).hidden)[0];
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  auto logits = m->logits(m->forward(x).hidden)[0];
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16) << "autocast's head is a bf16 linear";
  return logits.to(torch::kFloat32);
}

// log_softmax(logits / T) in float32 at every position of `ids` ([L, V]).
torch::Tensor full_logprobs(model::Transformer& m, const std::vector<int64_t>& ids, double T, bool bf16) {
  auto logits = full_logits(m, ids, bf16);
  return (T == 0 ? logits : logits / T).log_softmax(-1);
}

// Counts dispatcher calls of oneDNN's packed linear by the dtype of their input (a RecordFunction
// callback sees every call, whichever code made it).
class PackedLinearCounter {
 public:
  PackedLinearCounter() {
    bf16_calls() = 0, fp32_calls() = 0;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          if (std::string(fn.name()) != "mkldnn::_linear_pointwise") return nullptr;
          const auto in = fn.inputs();
          if (!in.empty() && in[0].isTensor()) {
            const auto dt = in[0].toTensor().scalar_type();
            if (dt == at::kBFloat16) ++bf16_calls();
            if (dt == at::kFloat) ++fp32_calls();
          }
          return nullptr;
        }).needsInputs(true));
  }
  ~PackedLinearCounter() { at::removeCallback(handle_); }
  static std::atomic<int64_t>& bf16_calls() {
    static std::atomic<int64_t> n{0};
    return n;
  }
  static std::atomic<int64_t>& fp32_calls() {
    static std::atomic<int64_t> n{0};
    return n;
  }

 private:
  at::CallbackHandle handle_;
};

}  // namespace

// The engine's bf16 linears (oneDNN, bf16 packed weights) are autocast's linears: a full forward
// through them equals the reference. Bound 1e-4: none of these products' float32 sums lands on a bf16
// rounding boundary differently here (observed: equal to the last bit); a flip would move a log-prob
// by ~1e-3.
TEST(Bf16Rollout, PackedBf16LinearsComputeAsAutocast) {
  if (!model::PackedWeights::available()) GTEST_SKIP() << "no oneDNN packed linear in this LibTorch";
  auto m = tiny_model(0.05);
  const std::vector<int64_t> ids = {200, 13, 13, 40, 7, 88, 1, 9, 120, 66, 31, 2, 5, 6, 7, 8, 9, 10};
  auto ref = full_logprobs(m, ids, 0.8, true);
  auto fp = full_logprobs(m, ids, 0.8, false);
  torch::Tensor packed;
  {
    torch::InferenceMode im;
    model::PackedWeights pw(torch::kBFloat16);
    model::PackedWeightsScope scope(&pw);
    packed = full_logprobs(m, ids, 0.8, true);
    ASSERT_EQ(pw.packed_dtype(m->layers->at<model::BlockImpl>(0).mlp->down_proj->weight), torch::kBFloat16);
  }
  EXPECT_LE((packed - ref).abs().max().item<double>(), 1e-4);
  EXPECT_GT((fp - ref).abs().mean().item<double>(), 1e-3) << "bf16 and float32 should differ visibly at this size";
}

// Sampled completions at T = 0.8: each returned log-prob against the bf16 reference and the float32
// one. The engine runs the same bf16 ops on the same bf16 inputs as the reference (the linears
// exactly so: test above), but a decode step attends over the KV cache one query at a time where
// the reference attends over the whole sequence: attention's bf16 internals (probabilities rounded
// to bf16 before the product with v) round differently there, and those differences travel on. Per
// token the bound is 4 bf16 roundings (2^-9 relative each) of these O(1) logits, 2^-6, plus the bf16
// head's own rounding of the logits: where the two float32 sums straddle a bf16 rounding boundary a
// logit moves by one bf16 ulp, <= 2^-8 max|z|, and log-softmax (2-Lipschitz in the max norm) of z/T
// by at most twice that over T. In the mean the rollout must be closer to the bf16 reference than the float32 model is
// (observed 0.0015 against 0.0023): a float32 rollout would equal the float32 column exactly, so this
// half fails if the bf16 path were not taken.
TEST(Bf16Rollout, SampledLogprobsEqualBf16TrainingForward) {
  auto m = tiny_model(0.05);
  FakeTokenizer tok;
  SamplingParams p;
  p.temperature = 0.8;
  p.max_completion_length = 16;
  p.ignore_eos = true;
  RolloutEngine engine(m, tok, p, EngineLimits{4, 0});
  engine.set_bf16(true);
  ASSERT_TRUE(engine.bf16_active());
  auto ps = prompts();
  auto out = engine.generate(ps, 3, 7);
  double sum_bf = 0, sum_fp = 0, max_bf = 0;
  int64_t n = 0;
  for (const auto& c : out) {
    ASSERT_EQ(c.logprobs.size(), c.token_ids.size());
    const auto seq = concat(ps[c.prompt_index], c.token_ids);
    auto ref_bf = full_logprobs(m, seq, 0.8, true);
    auto ref_fp = full_logprobs(m, seq, 0.8, false);
    const double zmax = full_logits(m, seq, true).abs().max().item<double>();
    const double bound = 1.0 / 64 + 2 * std::ldexp(zmax, -8) / 0.8;
    const int64_t L = c.prompt_length;
    for (size_t t = 0; t < c.token_ids.size(); ++t) {
      const double bf = ref_bf[L - 1 + t][c.token_ids[t]].item<double>();
      const double fp = ref_fp[L - 1 + t][c.token_ids[t]].item<double>();
      const double d = std::abs(c.logprobs[t] - bf);
      EXPECT_LE(d, bound) << "prompt " << c.prompt_index << " token " << t;
      max_bf = std::max(max_bf, d);
      sum_bf += d;
      sum_fp += std::abs(fp - bf);
      ++n;
    }
  }
  ASSERT_EQ(n, 9 * 16);
  const double mean_bf = sum_bf / n, mean_fp = sum_fp / n;
  EXPECT_GT(mean_fp, 1e-3) << "the float32 and bf16 references should differ visibly at this size";
  EXPECT_LT(mean_bf, 0.8 * mean_fp) << "rollout vs bf16: mean " << mean_bf << " (max " << max_bf
                                     << "); float32 vs bf16: mean " << mean_fp;
}

// Greedy bf16 completions equal step-wise argmaxes of the bf16 full forward (peaked distributions,
// init 0.3, so one-ulp differences cannot flip an argmax).
TEST(Bf16Rollout, GreedyEqualsArgmaxOfBf16FullForward) {
  auto m = tiny_model(0.3);
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 12;
  RolloutEngine engine(m, tok, p);
  engine.set_bf16(true);
  auto ps = prompts();
  auto out = engine.generate(ps, 2, 0);
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<int64_t> ref;
    while (ref.size() < 12) {
      ref.push_back(full_logprobs(m, concat(ps[i], ref), 0, true)[-1].argmax().item<int64_t>());
      if (ref.back() == 256) break;
    }
    EXPECT_EQ(out[i * 2].token_ids, ref) << "prompt " << i;
    EXPECT_EQ(out[i * 2 + 1].token_ids, ref) << "prompt " << i;
  }
}

// The bf16 path is taken: oneDNN's linear is called with bf16 inputs (counted at the dispatcher), and
// the packed copies are bf16 oneDNN tensors; with bf16 off the same generate() packs and calls
// float32 only. The model's own weights stay float32 either way.
TEST(Bf16Rollout, LinearsRunInBf16OnlyWhenAsked) {
  if (!model::PackedWeights::available()) GTEST_SKIP() << "no oneDNN packed linear in this LibTorch";
  auto m = tiny_model(0.05);
  FakeTokenizer tok;
  SamplingParams p;
  p.max_completion_length = 8;
  p.ignore_eos = true;
  RolloutEngine engine(m, tok, p);
  const auto& w = m->layers->at<model::BlockImpl>(0).self_attn->q_proj->weight;
  {
    PackedLinearCounter count;
    engine.generate(prompts(), 2, 1);
    EXPECT_EQ(PackedLinearCounter::bf16_calls().load(), 0);
    EXPECT_GT(PackedLinearCounter::fp32_calls().load(), 0);
    EXPECT_EQ(engine.packed_weights().packed_dtype(w), torch::kFloat32);
  }
  engine.set_bf16(true);
  {
    PackedLinearCounter count;
    engine.generate(prompts(), 2, 1);
    // 7 linears per layer in each forward: the prefill and 7 decode steps (the 8th token needs none),
    // plus the head once per forward (bf16 too, as the trainer's CPU bf16 head): nothing in float32.
    EXPECT_EQ(PackedLinearCounter::bf16_calls().load(), 3 * 7 * 8 + 8);
    EXPECT_EQ(PackedLinearCounter::fp32_calls().load(), 0);
    EXPECT_EQ(engine.packed_weights().packed_dtype(w), torch::kBFloat16);
  }
  EXPECT_EQ(w.scalar_type(), torch::kFloat32);
}

