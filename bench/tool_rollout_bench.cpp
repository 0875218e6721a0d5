// Tool-call rollouts (rollout.tools): the same scripted completions with tools on and off, on a
// random Llama and a byte tokenizer, and the cost of one call against the sandbox's bare program
// start. Each completion writes `calls` python blocks (print of a product) between filler tokens;
// with tools off the blocks stay text, with tools on each one pauses its sequence, runs in the
// sandbox and gets its output injected. Prints, per mode, wall time and sampled tokens/s; then:
//   bare            = host time of one run of `print(1)` through the python tool itself
//                     (make_python_tool with the rollout's tools config: the same sandbox path),
//                     median of `bare_runs` serial runs before and `bare_runs` after the rollouts;
//   start->injected = per call, a worker starts its sandbox -> the result's tokens are in the KV
//                     cache (RolloutStats::tool_call_timings, definition in engine.h), mean and median;
//   issued->injected = the same from the call's issue, so with the wait for a free worker;
//   the ratio start->injected / bare against the issue's target (< 2x), and where the time goes.
//   bench_tool_rollout_bench [prompts=8] [G=4] [calls=2] [filler=48] [bare_runs=20] [threads=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
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

}  // namespace

int main(int argc, char** argv) {
  const int P = argc > 1 ? std::atoi(argv[1]) : 8, G = argc > 2 ? std::atoi(argv[2]) : 4;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 2, filler = argc > 4 ? std::atoi(argv[4]) : 48;
  const int bare_runs = argc > 5 ? std::atoi(argv[5]) : 20, threads = argc > 6 ? std::atoi(argv[6]) : 2;
  torch::set_num_threads(threads);
  grpo::model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 260;
  s.hidden_size = 256;
  s.intermediate_size = 768;
  s.num_hidden_layers = 4;
  s.num_attention_heads = 8;
  s.num_key_value_heads = 4;
  s.head_dim = 32;
  s.max_position_embeddings = 2048;
  torch::manual_seed(0);
  grpo::model::Transformer model(s);
  ByteTokenizer tok;

  // Completion c: per call, `filler` letters then a block; then `filler` letters and EOS.
  std::vector<std::vector<std::string>> segs(static_cast<size_t>(P * G));
  for (int c = 0; c < P * G; ++c) {
    for (int k = 0; k < calls; ++k)
      segs[c].push_back(std::string(filler, 'a' + k) + "\n```python\nprint(" + std::to_string(c + 1000) + " * " +
                        std::to_string(k + 7) + ")\n```");
    segs[c].push_back(std::string(filler, 'z'));
  }
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(P), std::vector<int64_t>{'Q', ':', ' '});
  for (int i = 0; i < P; ++i) prompts[i].push_back('0' + i % 10);

  grpo::config::ToolsConfig tools;  // the defaults of rollout.tools
  tools.enabled = {"python"};
  auto run = [&](bool tools_on) {
    grpo::rollout::SamplingParams p;
    p.max_completion_length = 1024;
    grpo::rollout::RolloutEngine engine(model, tok, p, {P * G, 0});
    engine.set_tools(tools_on ? tools : grpo::config::ToolsConfig{});
    // The scripted policy: segment after segment; a jump in positions means an injection came.
    std::vector<size_t> seg(segs.size(), 0), off(segs.size(), 0);
    std::vector<int64_t> last(segs.size(), -1);
    engine.set_forced_tokens_for_testing([&](int64_t c, int64_t pos) -> int64_t {
      if (last[c] >= 0 && pos != last[c] + 1) ++seg[c], off[c] = 0;
      last[c] = pos;
      while (seg[c] < segs[c].size() && off[c] >= segs[c][seg[c]].size()) ++seg[c], off[c] = 0;
      if (seg[c] >= segs[c].size()) return 256;
      return static_cast<unsigned char>(segs[c][seg[c]][off[c]++]);
    });
    const auto t0 = Clock::now();
    auto out = engine.generate(prompts, G, 1);
    const double wall = since(t0);
    auto st = engine.last_stats();
    const int64_t sampled = st.completion_tokens - st.injected_tokens;
    std::printf("tools %-3s: %zu completions, wall %.3f s, %lld sampled tokens, %.1f sampled tokens/s, %lld calls, "
                "%lld injected tokens, %lld decode steps\n",
                tools_on ? "on" : "off", out.size(), wall, static_cast<long long>(sampled), sampled / wall,
                static_cast<long long>(st.tool_calls), static_cast<long long>(st.injected_tokens),
                static_cast<long long>(st.decode_steps));
    return std::make_pair(sampled / wall, st);
  };
  // Bare start: `print(1)` through the python tool, host time per run.
  const auto bare_tool = grpo::rollout::make_python_tool(tools);
  std::vector<double> bare_ms;
  auto bare = [&] {
    for (int i = 0; i < bare_runs; ++i) {
      const auto t0 = Clock::now();
      const auto r = bare_tool->run({"python", "print(1)\n"});
      bare_ms.push_back(1e3 * since(t0));
      if (r.outcome != grpo::rollout::ToolOutcome::OK || r.body != "1\n")
        std::fprintf(stderr, "bare run not ok: %s\n", r.body.c_str());
    }
  };
  bare_tool->run({"python", "print(1)\n"});  // warm-up
  bare();
  run(false);  // warm-up
  const auto [off_rate, off] = run(false);
  const auto [on_rate, on] = run(true);
  bare();

  std::vector<double> start_ms, issue_ms, queued, ran, waited, injected;
  for (const auto& t : on.tool_call_timings) {
    start_ms.push_back(1e3 * t.start_to_inject());
    issue_ms.push_back(1e3 * t.issue_to_inject());
    queued.push_back(1e3 * t.queued);
    ran.push_back(1e3 * t.run);
    waited.push_back(1e3 * t.wait);
    injected.push_back(1e3 * t.inject);
  }
  const double bare_med = median(bare_ms);
  std::printf("throughput: tools on / off = %.2fx sampled tokens/s (%.1f / %.1f)\n", on_rate / off_rate, on_rate,
              off_rate);
  std::printf("bare start: print(1) through the python tool, median %.2f ms, mean %.2f ms over %zu runs\n", bare_med,
              mean(bare_ms), bare_ms.size());
  std::printf("per call (%zu calls): start->injected mean %.2f ms, median %.2f ms; issued->injected (queueing "
              "included) mean %.2f ms, median %.2f ms\n",
              start_ms.size(), mean(start_ms), median(start_ms), mean(issue_ms), median(issue_ms));
  std::printf("per call, mean ms: queued %.2f, run %.2f (sandbox's own wall %.2f), wait for the step %.2f, "
              "tokenize+prefill %.2f\n",
              mean(queued), mean(ran), on.tool_calls ? 1e3 * on.tool_run_seconds / on.tool_calls : 0.0, mean(waited),
              mean(injected));
  const double ratio_mean = mean(start_ms) / bare_med, ratio_med = median(start_ms) / bare_med;
  std::printf("ratio start->injected / bare start: mean %.2fx, median %.2fx (target < 2x): %s\n", ratio_mean,
              ratio_med, ratio_mean < 2.0 ? "PASS" : "FAIL");
  return 0;
}
