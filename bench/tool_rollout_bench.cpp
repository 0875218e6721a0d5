// Tool-call rollouts (rollout.tools): the same scripted completions with tools on and off, on a
// random Llama and a byte tokenizer (or a real one), and the cost of one call against the
// sandbox's bare program start. Each completion writes `calls` python blocks (print of a product)
// between filler tokens; with tools off the blocks stay text, with tools on each one pauses its
// sequence, runs in the sandbox and gets its output injected. Five arms, alternated round by
// round in this one process (the shared machine's load hits them alike): tools off; tools on as a
// user gets them ("default": interpreters pre-started, each result prefilled by the worker that
// ran the call where that is sooner, else by the engine: set_tool_side_prefill left unset); the
// same with every result prefilled on the worker (set_tool_side_prefill(true)); the same with the
// engine prefilling every result itself before its next step (set_tool_side_prefill(false), CUDA's
// path); tools on with every call starting its own sandbox ("cold": the same tool behind a wrapper
// that drops prepare(), default prefill). Prints per arm the median wall time and sampled
// tokens/s; then:
//   bare            = host time of one run of `print(1)` through the python tool itself, cold
//                     (make_python_tool with the rollout's tools config, no prepare(): a fresh
//                     sandbox and interpreter per run), median of `bare_runs` serial runs per round;
//   start->injected = per call, a worker starts the call (exec.run(): the sandbox's start, or the
//                     hand-over to a pre-started interpreter) -> the result's tokens are in the KV
//                     cache (RolloutStats::tool_call_timings, definition in engine.h), mean and median;
//   issued->injected = the same from the call's issue, so with the wait for a free worker;
//   the ratio start->injected / bare against the issue's target (< 2x), and where the time goes.
//   bare warm       = the same through the tool between prepare(1) and release(), serial, each run
//                     after a pause of 3 bare starts (its interpreter has started): the floor of a call;
//   bench_tool_rollout_bench [prompts=8] [G=4] [calls=2] [filler=48] [bare_runs=20] [threads=1]
//                            [rounds=3] [stagger=0] [tokenizer.json or .model: a real one, not bytes]
// stagger = 0: every completion calls at the same positions (bursts of P*G calls on num_workers);
// stagger = s: completion c's first filler is s*c tokens longer, so calls arrive spread out.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpo/rollout/engine.h"
#include "grpo/rollout/tools.h"
#include "grpo/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ids 0..255 are bytes, 256 is EOS.
class ByteTokenizer : public grpo::tok::Tokenizer {
 public:
  ByteTokenizer() { special_.eos = {256}; }
  std::vector<int32_t> encode(std::string_view text) const override {
    return std::vector<int32_t>(reinterpret_cast<const unsigned char*>(text.data()),
                                reinterpret_cast<const unsigned char*>(text.data()) + text.size());
  }
  std::string decode(std::span<const int32_t> ids, bool = false) const override {
    std::string s;
    for (int32_t id : ids)
      if (id < 256) s += static_cast<char>(id);
    return s;
  }
  int32_t vocab_size() const override { return 260; }
  std::string piece(int32_t id) const override { return id < 256 ? std::string(1, static_cast<char>(id)) : ""; }
  std::optional<int32_t> find_token(std::string_view) const override { return std::nullopt; }
  bool is_special(int32_t id) const override { return id >= 256; }
  std::string describe() const override { return "bytes"; }
};

// The python tool with prepare() / release() dropped: every call starts its own sandbox (the
// "cold" arm; the tool's own path when no interpreter is pre-started).
class NoPrestart : public grpo::rollout::ToolExecutor {
 public:
  explicit NoPrestart(std::shared_ptr<const grpo::rollout::ToolExecutor> inner) : inner_(std::move(inner)) {}
  grpo::rollout::ToolResult run(const grpo::rollout::ToolCall& call) const override { return inner_->run(call); }

 private:
  std::shared_ptr<const grpo::rollout::ToolExecutor> inner_;
};

struct Arm {
  const char* name;
  std::vector<double> rate, wall;  // per round
  std::vector<grpo::rollout::ToolCallTiming> calls;
  int64_t tool_calls = 0, injected = 0, steps = 0;
  double run_seconds = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int P = argc > 1 ? std::atoi(argv[1]) : 8, G = argc > 2 ? std::atoi(argv[2]) : 4;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 2, filler = argc > 4 ? std::atoi(argv[4]) : 48;
  const int bare_runs = argc > 5 ? std::atoi(argv[5]) : 20, threads = argc > 6 ? std::atoi(argv[6]) : 1;
  const int rounds = argc > 7 ? std::atoi(argv[7]) : 3, stagger = argc > 8 ? std::atoi(argv[8]) : 0;
  const std::string tok_path = argc > 9 ? argv[9] : "";
  torch::set_num_threads(threads);
  std::unique_ptr<grpo::tok::Tokenizer> tok_owned =
      tok_path.empty() ? std::make_unique<ByteTokenizer>() : grpo::tok::load_tokenizer(tok_path);
  const grpo::tok::Tokenizer& tok = *tok_owned;
  const int64_t eos = tok.special().eos.empty() ? 0 : tok.special().eos.front();
  auto ids = [&](const std::string& text) {
    std::vector<int64_t> v;
    for (int32_t t : tok.encode(text)) v.push_back(t);
    return v;
  };
  grpo::model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = tok.vocab_size();
  s.hidden_size = 256;
  s.intermediate_size = 768;
  s.num_hidden_layers = 4;
  s.num_attention_heads = 8;
  s.num_key_value_heads = 4;
  s.head_dim = 32;
  s.max_position_embeddings = 2048;
  torch::manual_seed(0);
  grpo::model::Transformer model(s);

  // Completion c: per call, `filler` filler tokens then a block; then `filler` filler tokens and EOS.
  // The byte tokenizer's filler is letters, a real one's a word of one token.
  std::vector<std::vector<std::vector<int64_t>>> segs(static_cast<size_t>(P * G));
  for (int c = 0; c < P * G; ++c) {
    for (int k = 0; k <= calls; ++k) {
      const std::vector<int64_t> word = ids(tok_path.empty() ? std::string(1, static_cast<char>('a' + k)) : " step");
      std::vector<int64_t> seg;
      const int n = filler + (k == 0 ? stagger * c : 0);
      for (int f = 0; f < n; ++f) seg.insert(seg.end(), word.begin(), word.end());
      if (k < calls) {
        const auto block = ids("\n```python\nprint(" + std::to_string(c + 1000) + " * " + std::to_string(k + 7) + ")\n```");
        seg.insert(seg.end(), block.begin(), block.end());
      }
      segs[c].push_back(std::move(seg));
    }
  }
  std::vector<std::vector<int64_t>> prompts;
  for (int i = 0; i < P; ++i) prompts.push_back(ids("Q: " + std::to_string(i % 10)));

  grpo::config::ToolsConfig tools;  // the defaults of rollout.tools
  tools.enabled = {"python"};
  const std::shared_ptr<const grpo::rollout::ToolExecutor> py = grpo::rollout::make_python_tool(tools);
  const auto cold_py = std::make_shared<NoPrestart>(py);
  // side: -1 leaves the engine's default, 0 / 1 set_tool_side_prefill(false / true).
  auto run = [&](const std::shared_ptr<const grpo::rollout::ToolExecutor>& exec, Arm* arm, int side = -1) {
    grpo::rollout::SamplingParams p;
    p.max_completion_length = 1024;
    grpo::rollout::RolloutEngine engine(model, tok, p, {P * G, 0});
    engine.set_tools(exec ? tools : grpo::config::ToolsConfig{}, exec);
    if (side >= 0) engine.set_tool_side_prefill(side == 1);
    // The scripted policy: segment after segment; a jump in positions means an injection came.
    std::vector<size_t> seg(segs.size(), 0), off(segs.size(), 0);
    std::vector<int64_t> last(segs.size(), -1);
    engine.set_forced_tokens_for_testing([&](int64_t c, int64_t pos) -> int64_t {
      if (last[c] >= 0 && pos != last[c] + 1) ++seg[c], off[c] = 0;
      last[c] = pos;
      while (seg[c] < segs[c].size() && off[c] >= segs[c][seg[c]].size()) ++seg[c], off[c] = 0;
      if (seg[c] >= segs[c].size()) return eos;
      return segs[c][seg[c]][off[c]++];
    });
    const auto t0 = Clock::now();
    auto out = engine.generate(prompts, G, 1);
    const double wall = since(t0);
    const auto& st = engine.last_stats();
    const int64_t sampled = st.completion_tokens - st.injected_tokens;
    if (arm) {
      arm->rate.push_back(sampled / wall);
      arm->wall.push_back(wall);
      arm->calls.insert(arm->calls.end(), st.tool_call_timings.begin(), st.tool_call_timings.end());
      arm->tool_calls += st.tool_calls;
      arm->injected += st.injected_tokens;
      arm->steps += st.decode_steps;
      arm->run_seconds += st.tool_run_seconds;
    }
  };
  // Bare start: `print(1)` through the python tool, cold, host time per run.
  std::vector<double> bare_ms;
  auto bare = [&] {
    for (int i = 0; i < bare_runs; ++i) {
      const auto t0 = Clock::now();
      const auto r = py->run({"python", "print(1)\n"});
      bare_ms.push_back(1e3 * since(t0));
      if (r.outcome != grpo::rollout::ToolOutcome::OK || r.body != "1\n" || r.prestarted)
        std::fprintf(stderr, "bare run not ok: %s\n", r.body.c_str());
    }
  };
  py->run({"python", "print(1)\n"});  // warm-up
  run(nullptr, nullptr);              // warm-up
  Arm off{"tools off"}, warm{"tools on, default"}, side{"tools on, worker prefill"}, here{"tools on, engine prefill"},
      cold{"tools on, cold starts"};
  for (int r = 0; r < rounds; ++r) {
    bare();
    run(nullptr, &off);
    if (r % 2 == 0) {
      run(py, &warm);
      run(py, &side, 1);
      run(py, &here, 0);
      run(cold_py, &cold);
    } else {
      run(cold_py, &cold);
      run(py, &here, 0);
      run(py, &side, 1);
      run(py, &warm);
    }
  }
  bare();
  const double bare_med = median(bare_ms);
  // Bare warm: the same program through the tool with one interpreter kept pre-started.
  std::vector<double> warm_ms;
  py->prepare(1);
  for (int i = 0; i < bare_runs; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(3 * bare_med));
    const auto t0 = Clock::now();
    const auto r = py->run({"python", "print(1)\n"});
    warm_ms.push_back(1e3 * since(t0));
    if (r.outcome != grpo::rollout::ToolOutcome::OK || r.body != "1\n" || !r.prestarted)
      std::fprintf(stderr, "bare warm run not ok or not pre-started: %s\n", r.body.c_str());
  }
  py->release();

  std::printf("%d prompts x G %d, %d calls per completion, filler %d, stagger %d, %d thread(s), %d rounds, tokenizer %s\n",
              P, G, calls, filler, stagger, threads, rounds, tok.describe().c_str());
  std::printf("bare start: print(1) through the python tool (cold), median %.2f ms, mean %.2f ms over %zu runs\n",
              bare_med, mean(bare_ms), bare_ms.size());
  std::printf("bare warm: the same in a pre-started interpreter, median %.2f ms, mean %.2f ms over %zu runs\n",
              median(warm_ms), mean(warm_ms), warm_ms.size());
  for (const Arm* a : {&off, &warm, &side, &here, &cold}) {
    std::printf("%-22s: median wall %.3f s, median %.1f sampled tokens/s (%.2fx tools off); %lld calls, %lld injected "
                "tokens, %lld decode steps\n",
                a->name, median(a->wall), median(a->rate), median(a->rate) / median(off.rate),
                static_cast<long long>(a->tool_calls), static_cast<long long>(a->injected),
                static_cast<long long>(a->steps));
    if (a->calls.empty()) continue;
    std::vector<double> start_ms, issue_ms, queued, ran, prefilled, waited, injected;
    int64_t pre = 0, side = 0;
    for (const auto& t : a->calls) {
      start_ms.push_back(1e3 * t.start_to_inject());
      issue_ms.push_back(1e3 * t.issue_to_inject());
      queued.push_back(1e3 * t.queued);
      ran.push_back(1e3 * t.run);
      prefilled.push_back(1e3 * t.prefill);
      waited.push_back(1e3 * t.wait);
      injected.push_back(1e3 * t.inject);
      pre += t.prestarted;
      side += t.side;
    }
    std::printf("  per call (%zu, %lld in a pre-started interpreter, %lld prefilled on the worker): start->injected mean "
                "%.2f ms, median %.2f ms; issued->injected mean %.2f ms, median %.2f ms\n",
                start_ms.size(), static_cast<long long>(pre), static_cast<long long>(side), mean(start_ms),
                median(start_ms), mean(issue_ms), median(issue_ms));
    std::printf("  mean ms: queued %.2f, run %.2f (sandbox's own wall %.2f), prefill on the worker %.2f, wait for the "
                "step %.2f, inject %.2f; medians: run %.2f, prefill %.2f, wait %.2f, inject %.2f\n",
                mean(queued), mean(ran), 1e3 * a->run_seconds / static_cast<double>(a->tool_calls), mean(prefilled),
                mean(waited), mean(injected), median(ran), median(prefilled), median(waited), median(injected));
    const double ratio_mean = mean(start_ms) / bare_med, ratio_med = median(start_ms) / bare_med;
    std::printf("  ratio start->injected / bare start: mean %.2fx, median %.2fx (target < 2x): %s\n", ratio_mean,
                ratio_med, ratio_mean < 2.0 ? "PASS" : "FAIL");
  }
  return 0;
}
