// Rollout engine throughput: prefill and decode tokens/s for fixed-length completions (EOS ignored)
// of a Hugging Face model directory (or .gguf file), and the peak resident memory of this process. Run by
// bench/rollout_vs_transformers.py beside transformers' generate() on the same weights and prompts.
//
//   bench_rollout_bench --model DIR --tokenizer FILE --prompts ids.json --G 8 --new 64 [--threads N]
// prints one JSON line: {"batch", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_mb", ...}.
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "grpo/model/model_loader.h"
#include "grpo/rollout/engine.h"
#include "grpo/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  std::string model_dir, tok_path, prompts_path;
  int G = 8, new_tokens = 64, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--tokenizer") tok_path = v;
    else if (k == "--prompts") prompts_path = v;
    else if (k == "--G") G = std::stoi(v);
    else if (k == "--new") new_tokens = std::stoi(v);
    else if (k == "--threads") threads = std::stoi(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (model_dir.empty() || tok_path.empty() || prompts_path.empty()) {
    std::cerr << "usage: bench_rollout_bench --model DIR --tokenizer FILE --prompts ids.json [--G 8] [--new 64]\n";
    return 2;
  }
  try {
    if (threads > 0) torch::set_num_threads(threads);
    auto model = grpo::model::load_model(model_dir);
    model->eval();
    auto tok = grpo::tok::load_tokenizer(tok_path);
    std::ifstream in(prompts_path);
    auto prompts = nlohmann::json::parse(in).get<std::vector<std::vector<int64_t>>>();

    grpo::rollout::SamplingParams p;  // temperature 1, no filters: as transformers' do_sample, top_k=0
    p.ignore_eos = true;
    grpo::rollout::EngineLimits limits{static_cast<int>(prompts.size()) * G, 0};
    auto run = [&](int n_new) {
      p.max_completion_length = n_new;
      grpo::rollout::RolloutEngine engine(model, *tok, p, limits);
      auto t0 = std::chrono::steady_clock::now();
      auto out = engine.generate(prompts, G, 1234);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& c : out)
        if (c.completion_length != n_new) throw std::runtime_error("completion of the wrong length");
      return std::make_pair(s, engine.last_stats());
    };
    run(2);  // warm-up (allocator, thread pool)
    auto [t1, st1] = run(1);
    auto [tn, stn] = run(new_tokens);
    const double rows = static_cast<double>(prompts.size()) * G;
    int64_t prompt_tokens = 0;
    for (const auto& pr : prompts) prompt_tokens += static_cast<int64_t>(pr.size());
    // VmHWM (peak resident set of this process image; getrusage's ru_maxrss survives exec and
    // would report the launching Python's peak instead).
    double peak_mb = -1;
    {
      std::ifstream st("/proc/self/status");
      for (std::string line; std::getline(st, line);)
        if (line.rfind("VmHWM:", 0) == 0) peak_mb = std::stod(line.substr(6)) / 1024.0;
    }
    nlohmann::json j;
    j["impl"] = "grpo";
    j["prompts"] = prompts.size();
    j["G"] = G;
    j["batch"] = rows;
    j["new_tokens"] = new_tokens;
    j["threads"] = torch::get_num_threads();
    // Same definitions as the transformers side: prefill = a 1-token generate; decode = the extra
    // time of (new - 1) more tokens per row.
    j["prefill_tokens_per_s"] = prompt_tokens / t1;
    j["decode_tokens_per_s"] = rows * (new_tokens - 1) / (tn - t1);
    j["total_seconds"] = tn;
    j["engine_prefill_seconds"] = stn.prefill_seconds;
    j["engine_decode_seconds"] = stn.decode_seconds;
    j["peak_cache_tokens"] = stn.peak_cache_tokens;
    j["peak_rss_mb"] = peak_mb;
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_rollout_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
