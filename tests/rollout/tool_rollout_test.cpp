// Tool calls during generation (rollout.tools): a scripted policy (forced tokens on a tiny random
// Llama) emits calls; the engine pauses the sequence, runs the code in the sandbox, injects the
// wrapped result and resumes. Expected transcripts are written out by hand from the protocol in
// docs/rollout.md (bytes of the fake tokenizer), and the logprobs of the tokens sampled after an
// injection are checked against full forwards of the whole transcript (the injected tokens reached
// the KV cache as if they had been in the prompt).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "fake_tokenizer.h"
#include "grpo/rollout/engine.h"
#include "grpo/rollout/tools.h"
#include "grpo/util/error.h"
#include "sandbox/sandbox_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using grpo::rollout::testing::FakeTokenizer;

namespace {

// One intra-op thread: engine_test.cpp, in the same test_rollout binary, registers that environment.

constexpr int64_t kEos = 256;

model::Transformer tiny_model() {
  model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 64;
  s.intermediate_size = 128;
  s.num_hidden_layers = 2;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 16;
  s.max_position_embeddings = 512;
  s.initializer_range = 0.3;
  torch::manual_seed(1234);
  model::Transformer m(s);
  m->eval();
  return m;
}

std::vector<int64_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// A scripted policy: completion c emits script[c][0], and after each injection (a jump in the
// positions it is asked for) the next segment. A segment ending the script should end with EOS.
// Records every position it was asked for (the engine's draws).
struct Script {
  std::map<int64_t, std::vector<std::vector<int64_t>>> segs;
  std::map<int64_t, size_t> seg, off;
  std::map<int64_t, int64_t> last;
  std::vector<std::pair<int64_t, int64_t>> asked;  // (completion, position) in the order drawn
  bool run_over = false;                           // a position past the end of the script

  int64_t operator()(int64_t c, int64_t t) {
    asked.emplace_back(c, t);
    auto it = segs.find(c);
    if (it == segs.end()) return -1;
    if (last.count(c) && t != last[c] + 1) {  // an injection came between: next segment
      ++seg[c];
      off[c] = 0;
    }
    last[c] = t;
    while (seg[c] < it->second.size() && off[c] >= it->second[seg[c]].size()) {  // no injection: go on
      ++seg[c];
      off[c] = 0;
    }
    if (seg[c] >= it->second.size()) {
      run_over = true;
      return kEos;
    }
    return it->second[seg[c]][off[c]++];
  }
};

config::ToolsConfig python_tools() {
  config::ToolsConfig t;
  t.enabled = {"python"};
  t.timeout_s = 2.0;
  return t;
}

struct Harness {
  model::Transformer m = tiny_model();
  FakeTokenizer tok{260, {256}};
  SamplingParams p;
  std::shared_ptr<Script> script = std::make_shared<Script>();
  std::unique_ptr<RolloutEngine> engine;

  explicit Harness(const config::ToolsConfig& tools, int max_new = 200,
                   std::shared_ptr<const ToolExecutor> exec = nullptr) {
    p.temperature = 1.0;
    p.max_completion_length = max_new;
    engine = std::make_unique<RolloutEngine>(m, tok, p);
    if (!exec && tools.on()) exec = make_python_tool(tools, {grpo::test::run_marker()});
    engine->set_tools(tools, exec);
    auto s = script;
    engine->set_forced_tokens_for_testing([s](int64_t c, int64_t t) { return (*s)(c, t); });
  }
  std::vector<Completion> run(int n_prompts, int G) {
    std::vector<std::vector<int64_t>> prompts;
    for (int i = 0; i < n_prompts; ++i) prompts.push_back({10 + i, 20, 30});
    return engine->generate(prompts, G, 7);
  }
};

std::string wrapped(const std::string& body) { return "\n<output>\n" + body + "\n</output>\n"; }

std::vector<int64_t> cat(std::initializer_list<std::vector<int64_t>> parts) {
  std::vector<int64_t> r;
  for (const auto& p : parts) r.insert(r.end(), p.begin(), p.end());
  return r;
}

torch::Tensor full_logprobs(model::Transformer& m, const std::vector<int64_t>& ids) {
  torch::NoGradGuard ng;
  auto x = torch::tensor(ids, torch::kInt64).view({1, -1});
  return m->logits(m->forward(x).hidden)[0].log_softmax(-1);  // [L, V], T = 1
}

// Every sampled token's logprob (tool_mask 0), also after an injection, is the full forward's over
// prompt + transcript; injected tokens are skipped. `what` names the completion in a failure.
void expect_sampled_logprobs_match(model::Transformer& m, const std::vector<int64_t>& prompt, const Completion& c,
                                   const std::string& what) {
  auto lp = full_logprobs(m, cat({prompt, c.token_ids}));
  for (size_t k = 0; k < c.token_ids.size(); ++k) {
    if (c.tool_mask[k]) continue;
    EXPECT_NEAR(c.logprobs[k], lp[prompt.size() - 1 + k][c.token_ids[k]].item<float>(), 2e-4) << what << " token " << k;
  }
}

}  // namespace

// One call: pause, sandbox run, injection, resume. The transcript is the sampled text, the wrapped
// stdout and the text after it; injected tokens carry mask 1 and logprob 0 and were never drawn.
TEST(ToolRollout, CallRunsInjectsAndResumes) {
  Harness h(python_tools());
  const std::string a = "Compute.\n```python\nprint(6 * 7)\n```", b = "So 42.";
  h.script->segs[0] = {bytes(a), cat({bytes(b), {kEos}})};
  auto out = h.run(1, 1);
  ASSERT_EQ(out.size(), 1u);
  const Completion& c = out[0];
  const auto inj = bytes(wrapped("42"));
  EXPECT_EQ(c.token_ids, cat({bytes(a), inj, bytes(b), {kEos}}));
  EXPECT_EQ(c.text, a + wrapped("42") + b);
  EXPECT_EQ(c.finish_reason, FinishReason::EOS);
  EXPECT_EQ(c.tool_calls, 1);
  EXPECT_EQ(c.tool_errors, 0);
  EXPECT_EQ(c.tool_timeouts, 0);
  ASSERT_EQ(c.tool_mask.size(), c.token_ids.size());
  for (size_t k = 0; k < c.token_ids.size(); ++k) {
    const bool injected = k >= a.size() && k < a.size() + inj.size();
    EXPECT_EQ(c.tool_mask[k], injected ? 1 : 0) << k;
    if (injected) EXPECT_EQ(c.logprobs[k], 0.0f) << k;
  }
  for (auto [comp, t] : h.script->asked)
    EXPECT_FALSE(t >= static_cast<int64_t>(a.size()) && t < static_cast<int64_t>(a.size() + inj.size()))
        << "injected position " << t << " was drawn";
  EXPECT_FALSE(h.script->run_over);
  // Token in, token out: the transcript re-tokenised is the kept ids (EOS is not text).
  const auto re = h.tok.encode(c.text);
  EXPECT_EQ(std::vector<int64_t>(re.begin(), re.end()),
            std::vector<int64_t>(c.token_ids.begin(), c.token_ids.end() - 1));
  // Sampled logprobs, also after the injection, are the full forward's over prompt + transcript.
  const std::vector<int64_t> prompt = {10, 20, 30};
  expect_sampled_logprobs_match(h.m, prompt, c, "completion 0");
  EXPECT_EQ(h.engine->last_stats().tool_calls, 1);
  EXPECT_EQ(h.engine->last_stats().injected_tokens, static_cast<int64_t>(inj.size()));
}

// Errors: the model sees the stderr tail (the traceback's last line included); timeouts: a message.
TEST(ToolRollout, ErrorAndTimeoutText) {
  auto tools = python_tools();
  tools.timeout_s = 1.0;
  Harness h(tools);
  const std::string err = "```python\nprint('before')\n1/0\n```", slow = "```python\nwhile True: pass\n```";
  h.script->segs[0] = {bytes(err), {kEos}};
  h.script->segs[1] = {bytes(slow), {kEos}};
  auto out = h.run(2, 1);
  EXPECT_EQ(out[0].tool_errors, 1);
  EXPECT_EQ(out[0].tool_timeouts, 0);
  EXPECT_NE(out[0].text.find("<output>\nbefore\n"), std::string::npos) << out[0].text;
  EXPECT_NE(out[0].text.find("ZeroDivisionError: division by zero\n</output>\n"), std::string::npos) << out[0].text;
  EXPECT_EQ(out[1].tool_timeouts, 1);
  EXPECT_EQ(out[1].tool_errors, 0);
  EXPECT_EQ(out[1].text, slow + wrapped("TimeoutError: the program ran longer than 1 s"));
}

// max_tool_calls: later calls stay text and are not run; calls run in order within a completion.
TEST(ToolRollout, MaxToolCallsAndSecondCall) {
  auto tools = python_tools();
  tools.max_tool_calls = 2;
  Harness h(tools);
  const std::string c1 = "```python\nprint(1)\n```", c2 = "<code>print(2)</code>", c3 = "```python\nprint(3)\n```";
  h.script->segs[0] = {bytes(c1), bytes(c2), cat({bytes(c3), bytes("end"), {kEos}})};
  auto out = h.run(1, 1);
  EXPECT_EQ(out[0].tool_calls, 2);
  EXPECT_EQ(out[0].text, c1 + wrapped("1") + c2 + wrapped("2") + c3 + "end");
  tools.max_tool_calls = 0;
  Harness h0(tools);
  h0.script->segs[0] = {cat({bytes(c1), bytes("end"), {kEos}})};
  EXPECT_EQ(h0.run(1, 1)[0].text, c1 + "end");
}

// call_start / call_end / output_prefix / output_suffix are what the engine matches and injects.
TEST(ToolRollout, CustomSyntaxAndWrapper) {
  auto tools = python_tools();
  tools.call_start = {"<run>"};
  tools.call_end = {"</run>"};
  tools.output_prefix = "[out]";
  tools.output_suffix = "[/out]";
  Harness h(tools);
  const std::string ignored = "```python\nprint(1)\n```", call = "<run>print(5)</run>";
  h.script->segs[0] = {cat({bytes(ignored), bytes(call)}), cat({bytes("!"), {kEos}})};
  auto out = h.run(1, 1);
  EXPECT_EQ(out[0].tool_calls, 1);
  EXPECT_EQ(out[0].text, ignored + call + "[out]5[/out]!");
}

// Tools off (enabled: []): a call is plain text.
TEST(ToolRollout, DisabledToolsLeaveCallsAsText) {
  config::ToolsConfig off;
  Harness h(off);
  const std::string call = "```python\nprint(1)\n```";
  h.script->segs[0] = {cat({bytes(call), {kEos}})};
  auto out = h.run(1, 1);
  EXPECT_EQ(out[0].text, call);
  EXPECT_EQ(out[0].tool_calls, 0);
  EXPECT_EQ(out[0].tool_mask, std::vector<uint8_t>(call.size() + 1, 0));
}

// max_output_bytes: stdout is cut there, with a note; memory_mb: a large allocation fails.
TEST(ToolRollout, OutputAndMemoryLimits) {
  auto tools = python_tools();
  tools.max_output_bytes = 64;
  tools.memory_mb = 64;
  Harness h(tools);
  const std::string flood = "```python\nprint('x' * 1000)\n```", big = "```python\nb = bytearray(200 * 2**20)\n```";
  h.script->segs[0] = {bytes(flood), {kEos}};
  h.script->segs[1] = {bytes(big), {kEos}};
  auto out = h.run(2, 1);
  EXPECT_EQ(out[0].text, flood + wrapped(std::string(64, 'x') + "\n[output truncated at 64 bytes]"));
  EXPECT_EQ(out[1].tool_errors, 1);
  EXPECT_NE(out[1].text.find("MemoryError"), std::string::npos) << out[1].text;
}

// Injected tokens count toward max_completion_length: a result that does not fit is cut to the
// room left and the completion ends with LENGTH.
TEST(ToolRollout, InjectionCutToRoomLeft) {
  const std::string call = "```python\nprint(123456789)\n```";
  Harness h(python_tools(), static_cast<int>(call.size()) + 10);
  h.script->segs[0] = {bytes(call), {kEos}};
  auto out = h.run(1, 1);
  const auto full = cat({bytes(call), bytes(wrapped("123456789"))});
  EXPECT_EQ(out[0].finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(out[0].token_ids, std::vector<int64_t>(full.begin(), full.begin() + call.size() + 10));
  EXPECT_EQ(out[0].completion_length, static_cast<int>(call.size()) + 10);
}

// Stop strings are matched on sampled text only: one printed by the tool does not end the completion.
TEST(ToolRollout, StopStringInToolOutputIsIgnored) {
  auto tools = python_tools();
  model::Transformer m = tiny_model();
  FakeTokenizer tok(260, {256});
  SamplingParams p;
  p.max_completion_length = 200;
  p.stop = {"DONE"};
  RolloutEngine engine(m, tok, p);
  engine.set_tools(tools, make_python_tool(tools));
  Script script;
  // The code must not contain "DONE" itself: the call is sampled text, where the stop string counts.
  const std::string call = "```python\nprint('DO' + 'NE')\n```";
  script.segs[0] = {bytes(call), bytes("ok DONE more")};
  engine.set_forced_tokens_for_testing([&](int64_t c, int64_t t) { return script(c, t); });
  auto out = engine.generate({{1, 2, 3}}, 1, 0);
  EXPECT_EQ(out[0].finish_reason, FinishReason::STOP_STRING);
  EXPECT_EQ(out[0].text, call + wrapped("DONE") + "ok ");
}

// A slow call does not stall the batch: the other sequence keeps decoding while the first waits.
TEST(ToolRollout, OtherSequencesDecodeWhileACallRuns) {
  Harness h(python_tools());
  const std::string call = "```python\nimport time\ntime.sleep(1.0)\nprint(1)\n```";
  h.script->segs[0] = {bytes(call), {kEos}};
  // Completion 1 is longer than completion 0's call, so it has tokens left to draw while it runs.
  h.script->segs[1] = {cat({std::vector<int64_t>(150, 'a'), {kEos}})};
  auto out = h.run(2, 1);
  EXPECT_EQ(out[0].text, call + wrapped("1"));
  EXPECT_EQ(out[1].completion_length, 151);
  // Completion 1 drew its remaining tokens between completion 0's last draw before its call and
  // its first draw after it.
  int64_t pos0 = -1, drawn_by_1_during_call = 0;
  bool paused = false;
  for (auto [c, t] : h.script->asked) {
    if (c == 0) {
      paused = t == static_cast<int64_t>(call.size()) - 1;
      if (pos0 >= 0 && t > pos0 + 1) paused = false;
      pos0 = t;
    } else if (paused) {
      ++drawn_by_1_during_call;
    }
  }
  EXPECT_GT(drawn_by_1_during_call, 30);
}

namespace {
// Returns the code's length as its output after a delay that depends on the call (so results
// arrive in another order than the calls); counts the calls running at once.
class SlowEcho : public ToolExecutor {
 public:
  explicit SlowEcho(bool vary) : vary_(vary) {}
  ToolResult run(const ToolCall& call) const override {
    const int now = ++running_;
    int seen = max_running_.load();
    while (now > seen && !max_running_.compare_exchange_weak(seen, now)) {}
    std::this_thread::sleep_for(std::chrono::milliseconds(vary_ ? 40 * (call.code.size() % 4) : 150));
    --running_;
    return {ToolOutcome::OK, std::to_string(call.code.size()), 0.0};
  }
  mutable std::atomic<int> running_{0}, max_running_{0};

 private:
  bool vary_;
};
}  // namespace

// overlap: false makes a rollout with tools bit-reproducible (sampling after the calls is free,
// only the calls are scripted): the same tokens and logprobs whatever the result timing.
TEST(ToolRollout, NoOverlapIsReproducible) {
  auto tools = python_tools();
  tools.overlap = false;
  std::vector<std::vector<Completion>> runs;
  for (bool vary : {false, true}) {
    Harness h(tools, 40, std::make_shared<SlowEcho>(vary));
    for (int c = 0; c < 4; ++c) h.script->segs[c] = {bytes("<code>" + std::string(c + 1, 'x') + "</code>")};
    h.script->run_over = false;
    // After the scripted call the policy samples freely: the script returns -1 past its end.
    h.engine->set_forced_tokens_for_testing([s = h.script](int64_t c, int64_t t) {
      return t < static_cast<int64_t>(s->segs[c][0].size()) ? s->segs[c][0][t] : -1;
    });
    runs.push_back(h.run(2, 2));
  }
  for (size_t i = 0; i < runs[0].size(); ++i) {
    EXPECT_EQ(runs[0][i].tool_calls, 1);
    EXPECT_EQ(runs[0][i].token_ids, runs[1][i].token_ids) << i;
    EXPECT_EQ(runs[0][i].logprobs, runs[1][i].logprobs) << i;
  }
}

// num_workers: how many calls run at once.
TEST(ToolRollout, NumWorkersBoundsConcurrentCalls) {
  for (int workers : {1, 3}) {
    auto tools = python_tools();
    tools.num_workers = workers;
    auto exec = std::make_shared<SlowEcho>(false);
    Harness h(tools, 60, exec);
    for (int c = 0; c < 3; ++c) h.script->segs[c] = {bytes("<code>x</code>"), {kEos}};
    auto out = h.run(3, 1);
    for (const auto& c : out) EXPECT_EQ(c.text, "<code>x</code>" + wrapped("1"));
    EXPECT_EQ(exec->max_running_.load(), workers);
  }
}

// The engine asks its executor to prepare for as many calls as may wait at once (one per row it
// holds: 3 prompts x G 2 = 6 here, max_batch_size 4 caps the rows at 4), not one per worker, so
// that a burst of calls finds its interpreters started; and releases it once per generate().
TEST(ToolRollout, PreparesForOneCallPerRow) {
  class Recorder : public ToolExecutor {
   public:
    ToolResult run(const ToolCall&) const override { return {ToolOutcome::OK, "1", 0.0}; }
    void prepare(int n) const override { prepared.push_back(n); }
    void release() const override { ++released; }
    mutable std::vector<int> prepared;
    mutable int released = 0;
  };
  for (int64_t max_batch : {0, 4}) {
    auto tools = python_tools();
    tools.num_workers = 1;
    auto exec = std::make_shared<Recorder>();
    Harness h(tools, 60, exec);
    if (max_batch > 0) h.engine = std::make_unique<RolloutEngine>(h.m, h.tok, h.p, EngineLimits{static_cast<int>(max_batch), 0});
    h.engine->set_tools(tools, exec);
    auto s = h.script;
    h.engine->set_forced_tokens_for_testing([s](int64_t c, int64_t t) { return (*s)(c, t); });
    for (int c = 0; c < 6; ++c) h.script->segs[c] = {bytes("<code>x</code>"), {kEos}};
    auto out = h.run(3, 2);
    for (const auto& c : out) EXPECT_EQ(c.text, "<code>x</code>" + wrapped("1"));
    EXPECT_EQ(exec->prepared, std::vector<int>{max_batch > 0 ? 4 : 6}) << max_batch;
    EXPECT_EQ(exec->released, 1);
  }
}

// RolloutStats times each call from its sandbox start, not from its issue: with one worker the
// three calls issued in the same step run one after another (150 ms each, SlowEcho), so the second
// waits at least one run in the queue and the third two; start -> injected excludes that wait and
// includes the run; the sums are the per-call timelines'.
TEST(ToolRollout, StatsTimeCallsFromTheirSandboxStart) {
  auto tools = python_tools();
  tools.num_workers = 1;
  Harness h(tools, 60, std::make_shared<SlowEcho>(false));
  for (int c = 0; c < 3; ++c) h.script->segs[c] = {bytes("<code>x</code>"), {kEos}};
  auto out = h.run(3, 1);
  for (const auto& c : out) ASSERT_EQ(c.tool_calls, 1);
  const RolloutStats& st = h.engine->last_stats();
  EXPECT_EQ(st.tool_calls, 3);
  ASSERT_EQ(st.tool_call_timings.size(), 3u);
  std::vector<double> queued;
  double start_sum = 0, issue_sum = 0;
  for (const auto& t : st.tool_call_timings) {
    EXPECT_GE(t.run, 0.150);  // the executor's sleep
    EXPECT_GE(t.wait, 0.0);
    EXPECT_GT(t.inject, 0.0);  // a prefill forward
    EXPECT_LT(t.start_to_inject(), t.issue_to_inject());
    queued.push_back(t.queued);
    start_sum += t.start_to_inject();
    issue_sum += t.issue_to_inject();
  }
  std::sort(queued.begin(), queued.end());
  EXPECT_GE(queued[0], 0.0);
  EXPECT_GE(queued[1], 0.140);  // one run ahead (less the few microseconds between the issues)
  EXPECT_GE(queued[2], 0.290);  // two runs ahead
  EXPECT_GE(st.tool_start_to_inject_seconds, 3 * 0.150);
  EXPECT_NEAR(st.tool_start_to_inject_seconds, start_sum, 1e-9);
  EXPECT_NEAR(st.tool_issue_to_inject_seconds, issue_sum, 1e-9);
  EXPECT_GE(st.tool_issue_to_inject_seconds - st.tool_start_to_inject_seconds, 0.430);
}

// Results that arrive together are prefilled in one batch, right-padded to the longest (overlap:
// false injects the three calls of one step at once): each completion's transcript is its own, and
// the logprobs drawn after the injection are the full forward's over its whole transcript.
TEST(ToolRollout, ResultsOfDifferentLengthsInjectedTogether) {
  // Body: the code repeated (its first digit) times, so the three feeds differ in length.
  class Repeat : public ToolExecutor {
   public:
    ToolResult run(const ToolCall& call) const override {
      std::string body;
      for (int i = 0; i < call.code[0] - '0'; ++i) body += call.code;
      return {ToolOutcome::OK, body, 0.0};
    }
  };
  auto tools = python_tools();
  tools.overlap = false;
  Harness h(tools, 80, std::make_shared<Repeat>());
  for (int c = 0; c < 3; ++c)
    h.script->segs[c] = {bytes("<code>" + std::to_string(3 * c + 1) + "ab</code>"), cat({bytes("ok"), {kEos}})};
  auto out = h.run(3, 1);
  const std::vector<std::string> bodies = {"1ab", "4ab4ab4ab4ab", "7ab7ab7ab7ab7ab7ab7ab"};
  for (int c = 0; c < 3; ++c) {
    const std::string call = "<code>" + std::to_string(3 * c + 1) + "ab</code>";
    ASSERT_EQ(out[c].text, call + wrapped(bodies[c]) + "ok") << c;
    const std::vector<int64_t> prompt = {10 + c, 20, 30};
    expect_sampled_logprobs_match(h.m, prompt, out[c], "completion " + std::to_string(c));
  }
  EXPECT_EQ(h.engine->last_stats().tool_calls, 3);
}

// Hostile programs as calls cost their completion the call and nothing else: the batch finishes,
// the other completions are untouched, and no process of theirs is left on the host.
TEST(ToolRollout, HostileCallsCostOnlyTheirCall) {
  auto tools = python_tools();
  tools.timeout_s = 1.5;
  tools.max_output_bytes = 128;  // the wrapped results fit the room left (injected tokens count)
  Harness h(tools, 500);
  const std::vector<std::string> calls = {
      "```python\nimport os\nwhile True:\n    os.fork()\n```",
      "```python\nwhile True:\n    print('x' * 65536)\n```",
      "```python\nimport time\ntime.sleep(10**6)\n```",
  };
  for (int c = 0; c < 3; ++c) h.script->segs[c] = {bytes(calls[c]), cat({bytes("after"), {kEos}})};
  h.script->segs[3] = {bytes("```python\nprint(2 + 2)\n```"), cat({bytes("ok"), {kEos}})};
  auto out = h.run(4, 1);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out[c].tool_calls, 1) << c;
    EXPECT_EQ(out[c].tool_errors + out[c].tool_timeouts, 1) << c << ": " << out[c].text;
    EXPECT_EQ(out[c].finish_reason, FinishReason::EOS) << c;
    EXPECT_EQ(out[c].text.substr(out[c].text.size() - 5), "after") << c;
  }
  EXPECT_NE(out[1].text.find(std::string(128, 'x') + "\n[output truncated at 128 bytes]"), std::string::npos)
      << out[1].text;
  EXPECT_EQ(out[2].tool_timeouts, 1);
  EXPECT_EQ(out[3].text, "```python\nprint(2 + 2)\n```" + wrapped("4") + "ok");
  EXPECT_TRUE(grpo::test::pids_with_marker(grpo::test::run_marker()).empty());
}

// The python tool pre-starts one interpreter per worker for the calls of a generate(): calls run in
// them, each in a fresh one (a file the first call of a completion writes is not there for its
// second), and once generate() returns no interpreter is left. The first calls come 40 tokens in
// (their interpreters may still be starting on a loaded machine); the second ones ~90 tokens later.
TEST(ToolRollout, CallsRunInFreshPrestartedInterpreters) {
  Harness h(python_tools(), 500);
  const std::string call =
      "```python\nimport os\nprint(os.path.exists('/tmp/state'))\nopen('/tmp/state', 'w').write('x')\n```";
  for (int c = 0; c < 2; ++c)
    h.script->segs[c] = {cat({std::vector<int64_t>(40, 'a'), bytes(call)}), bytes(call), cat({bytes("end"), {kEos}})};
  auto out = h.run(2, 1);
  for (const auto& c : out) {
    EXPECT_EQ(c.tool_calls, 2);
    EXPECT_EQ(c.text, std::string(40, 'a') + call + wrapped("False") + call + wrapped("False") + "end");
  }
  const auto& timings = h.engine->last_stats().tool_call_timings;
  ASSERT_EQ(timings.size(), 4u);
  int prestarted = 0;
  for (const auto& t : timings) prestarted += t.prestarted;
  EXPECT_GE(prestarted, 2);
  EXPECT_TRUE(grpo::test::pids_with_marker(grpo::test::run_marker()).empty());
}

TEST(ToolRollout, BadConfigIsRefused) {
  auto m = tiny_model();
  FakeTokenizer tok(260, {256});
  RolloutEngine engine(m, tok, SamplingParams{});
  auto tools = python_tools();
  tools.enabled = {"bash"};
  EXPECT_THROW(engine.set_tools(tools), InputError);
  tools = python_tools();
  tools.call_end = {"```"};
  EXPECT_THROW(engine.set_tools(tools), InputError);
  tools = python_tools();
  tools.call_start[1] = "";
  EXPECT_THROW(engine.set_tools(tools), InputError);
}

// On the CPU with overlap on, the worker that ran a call prefills its result on a copy of the
// paused row while the engine decodes, and the engine copies the new slots in (ToolCallTiming::side);
// set_tool_side_prefill(false) makes the engine prefill itself. Either way the transcripts are the
// protocol's and the logprobs drawn after each injection are the full forward's over the whole
// transcript, here with a row that moves while it waits (the finished completion 0 is compacted
// away) and a call issued right after an injection.
TEST(ToolRollout, ResultsPrefilledOnTheWorkerWhileOthersDecode) {
  class SlowRepeat : public ToolExecutor {
   public:
    ToolResult run(const ToolCall& call) const override {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::string body;
      for (int i = 0; i < call.code[0] - '0'; ++i) body += call.code;
      return {ToolOutcome::OK, body, 0.0};
    }
  };
  for (const bool side : {true, false}) {
    Harness h(python_tools(), 200, std::make_shared<SlowRepeat>());
    h.engine->set_tool_side_prefill(side);
    h.script->segs[0] = {cat({std::vector<int64_t>(20, 'x'), {kEos}})};
    h.script->segs[1] = {bytes("go <code>1a</code>"), cat({bytes("ok"), {kEos}})};
    h.script->segs[2] = {cat({std::vector<int64_t>(30, 'b'), bytes("<code>2bb</code>")}), bytes("<code>3c</code>"),
                         cat({bytes("end"), {kEos}})};
    h.script->segs[3] = {cat({std::vector<int64_t>(60, 'c'), bytes("<code>4</code>")}), cat({bytes("fin"), {kEos}})};
    auto out = h.run(4, 1);
    const std::vector<std::string> texts = {
        std::string(20, 'x'), "go <code>1a</code>" + wrapped("1a") + "ok",
        std::string(30, 'b') + "<code>2bb</code>" + wrapped("2bb2bb") + "<code>3c</code>" + wrapped("3c3c3c") + "end",
        std::string(60, 'c') + "<code>4</code>" + wrapped("4444") + "fin"};
    for (int c = 0; c < 4; ++c) {
      ASSERT_EQ(out[c].text, texts[c]) << "side " << side << " completion " << c;
      const std::vector<int64_t> prompt = {10 + c, 20, 30};
      expect_sampled_logprobs_match(h.m, prompt, out[c], "side " + std::to_string(side) + " completion " + std::to_string(c));
    }
    // The side prefill needs a core the engine's intra-op threads leave free (1 thread here).
    const bool used = side && static_cast<unsigned>(at::get_num_threads()) < std::thread::hardware_concurrency();
    const auto& timings = h.engine->last_stats().tool_call_timings;
    ASSERT_EQ(timings.size(), 4u);
    for (const auto& t : timings) {
      EXPECT_EQ(t.side, used);
      EXPECT_GE(t.run, 0.050);
      if (used) EXPECT_GT(t.prefill, 0.0);  // the forward ran on the worker
      else EXPECT_EQ(t.prefill, 0.0);
    }
  }
}

// By default (set_tool_side_prefill unset) the worker prefills a result only where that is sooner
// than the engine's own prefill: the two results that come back while a third call is still in
// flight are prefilled on their workers (the engine would prefill them on its one core, one batch
// after another); the third, alone while the engine has nothing to decode and waits for it, by the
// engine. The transcripts are those of either path.
TEST(ToolRollout, DefaultPrefillsOnTheWorkerWhileOtherCallsAreInFlight) {
  class Sleepy : public ToolExecutor {
   public:
    ToolResult run(const ToolCall& call) const override {
      std::this_thread::sleep_for(std::chrono::milliseconds(call.code == "slow" ? 600 : 50));
      return {ToolOutcome::OK, call.code, 0.0};
    }
  };
  auto tools = python_tools();
  tools.num_workers = 3;
  Harness h(tools, 200, std::make_shared<Sleepy>());
  const std::vector<std::string> codes = {"a", "b", "slow"};
  for (int c = 0; c < 3; ++c) h.script->segs[c] = {bytes("<code>" + codes[c] + "</code>"), cat({bytes("ok"), {kEos}})};
  auto out = h.run(3, 1);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(out[c].text, "<code>" + codes[c] + "</code>" + wrapped(codes[c]) + "ok") << c;
  // The worker's prefill needs a core the engine's intra-op threads leave free (1 thread here).
  const bool used = static_cast<unsigned>(at::get_num_threads()) < std::thread::hardware_concurrency();
  const auto& timings = h.engine->last_stats().tool_call_timings;
  ASSERT_EQ(timings.size(), 3u);
  int side = 0;
  for (const auto& t : timings) {
    if (t.run >= 0.5) EXPECT_FALSE(t.side);  // the slow call, alone
    else EXPECT_EQ(t.side, used);
    side += t.side;
  }
  EXPECT_EQ(side, used ? 2 : 0);
}

// A result that is ready while a step is under way goes in before that step's draws (after its
// forward): the row it resumes is left out of the step's draws and draws its next token in the
// injection, then decodes from the next step on. Completion 0 decodes all along (slot 0, drawn
// first in every step); the others make calls of varied length, so their results come back at
// all points of a step. Between a resumed completion's draw in the injection and its next draw,
// completion 0 draws once when the result went in between steps, twice when it went in mid-step.
// Every completion's logprobs are the full forward's over its transcript either way.
TEST(ToolRollout, ResultReadyMidStepGoesInBeforeTheStepsDraws) {
  class Varied : public ToolExecutor {
   public:
    ToolResult run(const ToolCall& call) const override {
      std::this_thread::sleep_for(std::chrono::microseconds(300 * static_cast<int>(call.code.size())));
      return {ToolOutcome::OK, "r", 0.0};
    }
  };
  auto tools = python_tools();
  tools.num_workers = 4;
  tools.max_tool_calls = 4;
  Harness h(tools, 400, std::make_shared<Varied>());
  h.script->segs[0] = {cat({std::vector<int64_t>(380, 'a'), {kEos}})};
  for (int c = 1; c < 8; ++c) {
    auto& segs = h.script->segs[c];
    for (int k = 0; k < 4; ++k) segs.push_back(bytes("<code>" + std::string(1 + (5 * c + 3 * k) % 17, 'x') + "</code>"));
    segs.push_back(cat({bytes("ok"), {kEos}}));
  }
  auto out = h.run(8, 1);
  ASSERT_EQ(out[0].completion_length, 381);
  for (int c = 0; c < 8; ++c) {
    if (c > 0) ASSERT_EQ(out[c].tool_calls, 4) << c;
    const std::vector<int64_t> prompt = {10 + c, 20, 30};
    expect_sampled_logprobs_match(h.m, prompt, out[c], "completion " + std::to_string(c));
  }
  // Per resumed completion: completion 0's draws between its draw after an injection and its next.
  int mid_step = 0, between_steps = 0;
  std::map<int64_t, int64_t> last;    // completion -> last position drawn
  std::map<int64_t, int> zero_since;  // completion -> completion 0's draws since its draw in an injection
  for (auto [c, t] : h.script->asked) {
    if (c == 0) {
      for (auto& [k, n] : zero_since) ++n;
      continue;
    }
    auto it = zero_since.find(c);
    if (it != zero_since.end()) {
      if (it->second == 2) ++mid_step;
      else if (it->second == 1) ++between_steps;
      else ADD_FAILURE() << "completion " << c << ": completion 0 drew " << it->second << " times";
      zero_since.erase(it);
    }
    if (last.count(c) && t > last[c] + 1) zero_since[c] = 0;  // drawn in an injection
    last[c] = t;
  }
  EXPECT_EQ(mid_step + between_steps, 7 * 4);  // every call's result, each followed by a draw
  EXPECT_GE(mid_step, 1);
}
