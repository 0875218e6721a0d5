// Tool-call rollouts (rollout.tools): the same scripted completions with tools on and off, on a
// random Llama and a byte tokenizer, and the cost of one call against the sandbox's bare program
// start. Each completion writes `calls` python blocks (print of a product) between filler tokens;
// with tools off the blocks stay text, with tools on each one pauses its sequence, runs in the
// sandbox and gets its output injected. Prints one JSON line per mode and the per-call figures:
//   latency = call issued -> its result's tokens in the KV cache (mean over calls),
//   run     = the sandbox run itself (SandboxResult::wall_s),
//   bare    = host time of Sandbox::run("pass") (start, run, teardown), mean of `bare_runs` serial runs.
//   bench_tool_rollout_bench [prompts=8] [G=4] [calls=2] [filler=48] [bare_runs=20] [threads=2]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "grpo/reward/sandbox.h"
#include "grpo/rollout/engine.h"
#include "grpo/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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

  auto run = [&](bool tools_on) {
    grpo::rollout::SamplingParams p;
    p.max_completion_length = 1024;
    grpo::rollout::RolloutEngine engine(model, tok, p, {P * G, 0});
    grpo::config::ToolsConfig t;
    if (tools_on) t.enabled = {"python"};
    engine.set_tools(t);
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
    const auto& st = engine.last_stats();
    const int64_t sampled = st.completion_tokens - st.injected_tokens;
    std::printf(
        "{\"tools\": %s, \"completions\": %zu, \"wall_s\": %.3f, \"sampled_tokens\": %lld, \"injected_tokens\": %lld, "
        "\"sampled_tokens_per_s\": %.1f, \"tool_calls\": %lld, \"mean_latency_ms\": %.2f, \"mean_run_ms\": %.2f}\n",
        tools_on ? "true" : "false", out.size(), wall, static_cast<long long>(sampled),
        static_cast<long long>(st.injected_tokens), sampled / wall, static_cast<long long>(st.tool_calls),
        st.tool_calls ? 1e3 * st.tool_latency_seconds / st.tool_calls : 0.0,
        st.tool_calls ? 1e3 * st.tool_run_seconds / st.tool_calls : 0.0);
    return st;
  };
  run(false);  // warm-up
  const auto off = run(false);
  const auto on = run(true);

  grpo::config::SandboxConfig sc;
  grpo::reward::Sandbox sandbox(sc);
  grpo::reward::SandboxRequest req;
  req.source = "pass\n";
  sandbox.run(req);  // warm-up
  const auto t0 = Clock::now();
  for (int i = 0; i < bare_runs; ++i) sandbox.run(req);
  const double bare_ms = 1e3 * since(t0) / bare_runs;
  const double latency_ms = on.tool_calls ? 1e3 * on.tool_latency_seconds / on.tool_calls : 0.0;
  std::printf("{\"bare_sandbox_run_ms\": %.2f, \"mean_call_latency_ms\": %.2f, \"latency_over_bare\": %.2f, "
              "\"decode_s_off\": %.3f, \"decode_s_on\": %.3f}\n",
              bare_ms, latency_ms, latency_ms / bare_ms, off.decode_seconds, on.decode_seconds);
  return 0;
}
