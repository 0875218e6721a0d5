// The rollout engine on a tiny random Llama: greedy output and logprobs against full (non-cached)
// forwards of the same model, reproducibility, EOS handling, stop strings, scheduling limits and
// bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "fake_tokenizer.h"
#include "grpo/rollout/engine.h"
#include "grpo/util/error.h"

using namespace grpo;
using namespace grpo::rollout;
using grpo::rollout::testing::FakeTokenizer;

namespace {

// Tiny matrices gain nothing from intra-op threads, and on a loaded machine spinning worker
// threads make these tests 100x slower.
class OneThread : public ::testing::Environment {
 public:
  void SetUp() override { torch::set_num_threads(1); }
};
[[maybe_unused]] const auto* const kOneThread = ::testing::AddGlobalTestEnvironment(new OneThread);

model::Transformer tiny_model(int ctx = 64, double init = 0.3) {
  model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 64;
  s.intermediate_size = 128;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 16;
  s.max_position_embeddings = ctx;
  // Wide initialisation (0.3) by default: peaked next-token distributions, so greedy argmaxes are not
  // near-ties that float32 rounding differences between cached and full forwards could flip.
  s.initializer_range = init;
  torch::manual_seed(1234);
  model::Transformer m(s);
  m->eval();
  return m;
}

std::vector<std::vector<int64_t>> prompts() {
  return {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7}, {200, 13, 13, 40, 7, 88, 1, 9, 120, 66, 31, 2}};
}

// Full-sequence forward without a cache: log-softmax of logits / T at every position. [L, V] float32.
torch::Tensor full_logprobs(model::Transformer& m, const std::vector<int64_t>& ids, double T) {
  torch::NoGradGuard ng;
  auto x = torch::tensor(ids, torch::kInt64).view({1, -1});
  auto logits = m->logits(m->forward(x).hidden)[0];
  return (T == 0 ? logits : logits / T).log_softmax(-1);
}

std::vector<int64_t> concat(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  auto r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

}  // namespace

TEST(RolloutEngine, GreedyEqualsStepwiseArgmaxOfFullForwards) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 12;
  RolloutEngine engine(m, tok, p);
  auto ps = prompts();
  auto out = engine.generate(ps, 2, 0);
  ASSERT_EQ(out.size(), ps.size() * 2);
  for (size_t i = 0; i < ps.size(); ++i) {
    // Reference: append argmax of a full forward until EOS (256) or 12 tokens.
    std::vector<int64_t> ref;
    while (ref.size() < 12) {
      auto lp = full_logprobs(m, concat(ps[i], ref), 0);
      ref.push_back(lp[-1].argmax().item<int64_t>());
      if (ref.back() == 256) break;
    }
    for (int j = 0; j < 2; ++j) {
      const auto& c = out[i * 2 + j];
      EXPECT_EQ(c.prompt_index, static_cast<int64_t>(i));
      EXPECT_EQ(c.token_ids, ref) << "prompt " << i << " completion " << j;
      EXPECT_EQ(c.prompt_length, static_cast<int>(ps[i].size()));
      EXPECT_EQ(c.completion_length, static_cast<int>(ref.size()));
      EXPECT_EQ(c.finish_reason, ref.back() == 256 ? FinishReason::EOS : FinishReason::LENGTH);
    }
  }
  // Each distinct prompt prefilled once, not G times.
  EXPECT_EQ(engine.last_stats().prompt_tokens, 3 + 7 + 12);
}

// The engine keeps its packed head between calls: a weight change in place (an optimizer step)
// must reach the next call's samples. Reference: step-wise argmax of full forwards after the change.
TEST(RolloutEngine, NextCallSeesWeightsChangedInPlace) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 6;
  RolloutEngine engine(m, tok, p);
  const std::vector<std::vector<int64_t>> ps = {{5, 17, 99}};
  auto before = engine.generate(ps, 1, 0);
  {
    torch::NoGradGuard ng;
    auto& w = m->lm_head ? m->lm_head->weight : m->embed_tokens->weight;
    torch::manual_seed(99);
    w.add_(torch::randn_like(w) * 0.5);
  }
  auto after = engine.generate(ps, 1, 0);
  std::vector<int64_t> ref;
  while (ref.size() < 6) {
    ref.push_back(full_logprobs(m, concat(ps[0], ref), 0)[-1].argmax().item<int64_t>());
    if (ref.back() == 256) break;
  }
  EXPECT_EQ(after[0].token_ids, ref);
  EXPECT_NE(after[0].token_ids, before[0].token_ids) << "the change should alter the greedy output";
}

// Sampling at T = 0.8 with many EOS ids so that rows finish at different steps, a batch of 4 rows
// for 9 completions (slots are refilled from the queue) and a KV budget: every returned logprob
// equals the full forward's log_softmax(logits / T) at that position.
TEST(RolloutEngine, LogprobsMatchFullForwardAfterRowsLeaveTheBatch) {
  // HF-like initialisation scale: logits of O(1), as the 1e-5 float32 tolerance assumes (with 0.3 the
  // logits reach O(100) and their float32 rounding alone is ~1e-5).
  auto m = tiny_model(64, 0.05);
  FakeTokenizer tok;
  SamplingParams p;
  p.temperature = 0.8;
  p.top_k = 50;  // filters must not change the returned logprobs (they are of the unfiltered policy)
  p.max_completion_length = 16;
  for (int64_t t = 0; t < 260; t += 9) p.eos_token_ids.push_back(t);
  RolloutEngine engine(m, tok, p, EngineLimits{4, 0});
  auto ps = prompts();
  auto out = engine.generate(ps, 3, 42);
  std::set<int> lengths;
  for (const auto& c : out) {
    ASSERT_EQ(c.logprobs.size(), c.token_ids.size());
    lengths.insert(c.completion_length);
    auto ref = full_logprobs(m, concat(ps[c.prompt_index], c.token_ids), 0.8);
    const int64_t L = c.prompt_length;
    for (size_t t = 0; t < c.token_ids.size(); ++t) {
      const float expect = ref[L - 1 + t][c.token_ids[t]].item<float>();
      // 1e-5: float32 forwards of different batch shapes round differently, O(1e-6) here.
      EXPECT_NEAR(c.logprobs[t], expect, 1e-5) << "prompt " << c.prompt_index << " token " << t;
    }
    if (c.finish_reason == FinishReason::EOS) {
      EXPECT_EQ(c.token_ids.back() % 9, 0);
    }
  }
  EXPECT_GE(lengths.size(), 3u) << "rows should finish at different steps for this test to mean anything";
  EXPECT_LE(engine.last_stats().peak_batch, 4);
}

TEST(RolloutEngine, SameSeedSameOutputDifferentSeedDifferentOutput) {
  auto m = tiny_model();
  FakeTokenizer tok;
  SamplingParams p;
  p.temperature = 1.0;
  p.top_p = 0.95;
  p.max_completion_length = 10;
  RolloutEngine engine(m, tok, p);
  auto ids = [&](uint64_t seed) {
    std::vector<std::vector<int64_t>> r;
    for (const auto& c : engine.generate(prompts(), 4, seed)) r.push_back(c.token_ids);
    return r;
  };
  auto a = ids(1), b = ids(1), c = ids(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The G completions of one prompt are different samples, not copies.
  EXPECT_NE(a[0], a[1]);
}

TEST(RolloutEngine, SamplingIsPerSequenceNotPerBatch) {
  // Each completion draws from its own stream (its prompt's seed, its index j, its position), so a
  // prompt given alone, in another batch or under other batch limits samples the same tokens: what
  // lets N data-parallel ranks sample what one process samples. Wide initialisation (peaked
  // distributions) keeps float rounding between batch shapes far from any CDF step.
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 1.0;
  p.max_completion_length = 10;
  auto ps = prompts();
  const std::vector<uint64_t> seeds{11, 22, 33};
  RolloutEngine engine(m, tok, p);
  auto all = engine.generate(ps, 3, seeds);
  for (size_t i = 0; i < ps.size(); ++i) {
    auto alone = engine.generate({ps[i]}, 3, std::vector<uint64_t>{seeds[i]});
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ(alone[j].token_ids, all[i * 3 + j].token_ids) << "prompt " << i << " j " << j;
  }
  // Reversed prompt order, and a batch of 2 rows with a cache budget: the same samples.
  auto rev = engine.generate({ps[2], ps[1], ps[0]}, 3, std::vector<uint64_t>{33, 22, 11});
  RolloutEngine narrow(m, tok, p, EngineLimits{2, 0});
  auto small = narrow.generate(ps, 3, seeds);
  for (size_t i = 0; i < ps.size(); ++i)
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(rev[(2 - i) * 3 + j].token_ids, all[i * 3 + j].token_ids) << i << " " << j;
      EXPECT_EQ(small[i * 3 + j].token_ids, all[i * 3 + j].token_ids) << i << " " << j;
    }
  // Not vacuous: the samples of one prompt differ, and another seed gives other samples.
  EXPECT_NE(all[0].token_ids, all[1].token_ids);
  auto other = engine.generate({ps[0]}, 3, std::vector<uint64_t>{12});
  EXPECT_NE(other[0].token_ids, all[0].token_ids);
  EXPECT_THROW(engine.generate(ps, 3, std::vector<uint64_t>{1}), InputError);
}

TEST(RolloutEngine, BatchLimitsAndBudgetDoNotChangeGreedyOutput) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 10;
  auto ps = prompts();
  RolloutEngine wide(m, tok, p);
  auto ref = wide.generate(ps, 3, 0);
  // capacity = 12 + 10 = 22 tokens per row; budget for 4 rows -> 3 completions + 1 prefill row.
  RolloutEngine narrow(m, tok, p, EngineLimits{64, 4 * 22});
  auto out = narrow.generate(ps, 3, 0);
  ASSERT_EQ(out.size(), ref.size());
  for (size_t k = 0; k < out.size(); ++k) EXPECT_EQ(out[k].token_ids, ref[k].token_ids) << k;
  EXPECT_LE(narrow.last_stats().peak_cache_tokens, 4 * 22);
  EXPECT_LE(narrow.last_stats().peak_batch, 3);
  // A group larger than the batch is split into chunks and still complete.
  RolloutEngine tiny_batch(m, tok, p, EngineLimits{2, 0});
  auto chunked = tiny_batch.generate(ps, 3, 0);
  for (size_t k = 0; k < out.size(); ++k) EXPECT_EQ(chunked[k].token_ids, ref[k].token_ids) << k;
}

// Several EOS ids (as Llama-3 Instruct declares) and pad == eos: a completion ends on whichever EOS
// comes first, and that token is its last one.
TEST(RolloutEngine, EndsOnAnyOfSeveralEosAndKeepsTheEosToken) {
  auto m = tiny_model();
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 12;
  FakeTokenizer plain;
  auto free_run = RolloutEngine(m, plain, p).generate(prompts(), 1, 0);
  // Pick two tokens of prompt 2's free run as the model's EOS ids: the earlier one must end it.
  const auto& run = free_run[2].token_ids;
  ASSERT_GE(run.size(), 6u);
  const int64_t first = run[3], second = run[5];
  size_t end = 0;
  while (run[end] != first && run[end] != second) ++end;
  FakeTokenizer tok(260, {static_cast<int32_t>(second), static_cast<int32_t>(first)});
  tok.set_pad(static_cast<int32_t>(first));
  RolloutEngine engine(m, tok, p);
  auto out = engine.generate(prompts(), 1, 0);
  const auto& c = out[2];
  EXPECT_EQ(c.finish_reason, FinishReason::EOS);
  EXPECT_EQ(c.token_ids, std::vector<int64_t>(run.begin(), run.begin() + end + 1));
  EXPECT_EQ(c.logprobs.size(), c.token_ids.size());
  // stop_token_ids end it the same way, reported as STOP_TOKEN.
  SamplingParams q = p;
  q.stop_token_ids = {first};
  auto st = RolloutEngine(m, plain, q).generate(prompts(), 1, 0)[2];
  EXPECT_EQ(st.finish_reason, FinishReason::STOP_TOKEN);
  EXPECT_EQ(st.token_ids.back(), first);
  // ignore_eos: fixed lengths.
  SamplingParams r = p;
  r.ignore_eos = true;
  auto ig = RolloutEngine(m, tok, r).generate(prompts(), 1, 0)[2];
  EXPECT_EQ(ig.finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(ig.token_ids, run);
}

TEST(RolloutEngine, StopStringTrimsTextAndKeepsTokensBeforeIt) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {}, /*letters=*/true);  // every token decodes to one letter
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 14;
  auto free_run = RolloutEngine(m, tok, p).generate(prompts(), 1, 0)[1];
  ASSERT_EQ(free_run.text.size(), 14u);
  const std::string stop = free_run.text.substr(6, 3);
  const size_t at = free_run.text.find(stop);  // the first occurrence, at most 6
  SamplingParams q = p;
  q.stop = {"zzzzzzzz", stop};
  auto c = RolloutEngine(m, tok, q).generate(prompts(), 1, 0)[1];
  EXPECT_EQ(c.finish_reason, FinishReason::STOP_STRING);
  EXPECT_EQ(c.text, free_run.text.substr(0, at));
  EXPECT_EQ(c.token_ids, std::vector<int64_t>(free_run.token_ids.begin(), free_run.token_ids.begin() + at));
  EXPECT_EQ(c.logprobs.size(), at);
}

TEST(RolloutEngine, LengthIsCappedByTheContext) {
  auto m = tiny_model(/*ctx=*/16);
  FakeTokenizer tok;
  SamplingParams p;
  p.temperature = 0;
  p.max_completion_length = 50;
  p.ignore_eos = true;
  auto out = RolloutEngine(m, tok, p).generate(prompts(), 1, 0);
  EXPECT_EQ(out[0].completion_length, 16 - 3);
  EXPECT_EQ(out[2].completion_length, 16 - 12);
  EXPECT_EQ(out[2].finish_reason, FinishReason::LENGTH);
}

TEST(RolloutEngine, BadInputGivesClearErrors) {
  auto m = tiny_model(/*ctx=*/16);
  FakeTokenizer tok;
  SamplingParams p;
  RolloutEngine engine(m, tok, p);
  auto expect_error = [](auto&& fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([&] { engine.generate({}, 2, 0); }, "no prompts");
  expect_error([&] { engine.generate({{1, 2}, {}}, 2, 0); }, "prompt 1 is empty");
  expect_error([&] { engine.generate({std::vector<int64_t>(16, 3)}, 2, 0); }, "context is 16 tokens");
  expect_error([&] { engine.generate({{1, 2}}, 0, 0); }, "num_generations = 0");
  expect_error([&] { engine.generate({{1, 999}}, 1, 0); }, "outside the model's vocabulary");
  SamplingParams zero = p;
  zero.max_completion_length = 0;
  expect_error([&] { RolloutEngine e(m, tok, zero); }, "rollout.max_completion_length = 0");
  SamplingParams bad_p = p;
  bad_p.top_p = 0;
  expect_error([&] { RolloutEngine e(m, tok, bad_p); }, "rollout.top_p");
  SamplingParams stop = p;
  stop.stop = {""};
  expect_error([&] { RolloutEngine e(m, tok, stop); }, "rollout.stop.0 is empty");
  p.max_completion_length = 4;
  RolloutEngine small(m, tok, p, EngineLimits{8, 10});
  expect_error([&] { small.generate({{1, 2, 3}}, 2, 0); }, "kv_cache_budget_tokens = 10 is too small");
}

// Repetition penalty inside the engine: the "seen" set must follow each row through refills and
// compaction. Reference: full forwards, CTRL penalty applied here by hand over prompt + completion.
TEST(RolloutEngine, GreedyWithRepetitionPenaltyMatchesReference) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 1.8;
  p.max_completion_length = 10;
  m->train();
  RolloutEngine engine(m, tok, p, EngineLimits{2, 0});  // 6 completions through 2 slots
  auto ps = prompts();
  auto out = engine.generate(ps, 2, 0);
  EXPECT_TRUE(m->is_training()) << "the caller's training mode is restored";
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<int64_t> ref;
    while (ref.size() < 10) {
      auto seq = concat(ps[i], ref);
      torch::NoGradGuard ng;
      auto logits = m->logits(m->forward(torch::tensor(seq, torch::kInt64).view({1, -1})).hidden)[0][-1];
      std::vector<double> l(logits.size(0));
      for (size_t v = 0; v < l.size(); ++v) l[v] = logits[v].item<float>();
      for (int64_t t : seq) l[t] = l[t] > 0 ? l[t] / 1.8 : l[t] * 1.8;
      ref.push_back(std::max_element(l.begin(), l.end()) - l.begin());
      if (ref.back() == 256) break;
    }
    EXPECT_EQ(out[i * 2].token_ids, ref) << "prompt " << i;
    EXPECT_EQ(out[i * 2 + 1].token_ids, ref) << "prompt " << i;
  }
}
