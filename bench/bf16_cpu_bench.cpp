// trainer.bf16 on the CPU, the rollout half: the GEMM roofline of this CPU in one dtype and the
// rollout engine's decode tokens/s at several batch sizes in that dtype (float32, or bf16 as the
// engine runs it under trainer.bf16: RolloutEngine::set_bf16), with the peak resident memory of
// this process. Run once per dtype by bench/bf16_cpu.py (separate processes, so each peak RSS is
// its dtype's own), which also times the GRPO step.
//
//   bench_bf16_cpu_bench --model DIR --tokenizer FILE --dtype float32|bfloat16 [--threads 2]
//                        [--batches 1,16,64] [--new 64] [--prompt-len 32] [--gemm 2048]
// prints one JSON line: {"dtype", "gemm_gflops", "decode": {"<batch>": tokens/s}, "peak_rss_mb", ...}.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "grpo/model/model_loader.h"
#include "grpo/rollout/engine.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/malloc_tuning.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// GFLOP/s of an n x n x n product in `dt` (torch::mm: oneDNN/MKL, as the model's linears), best of
// `reps` after one warm-up: the compute roof the decode and training figures are read against.
double gemm_gflops(int64_t n, torch::Dtype dt, int reps = 5) {
  torch::InferenceMode guard;
  auto a = torch::randn({n, n}).to(dt), b = torch::randn({n, n}).to(dt);
  torch::mm(a, b);
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    torch::mm(a, b);
    best = std::min(best, since(t0));
  }
  return 2.0 * n * n * n / best / 1e9;
}

double peak_rss_mb() {  // VmHWM: the peak resident set of this process
  std::ifstream st("/proc/self/status");
  for (std::string line; std::getline(st, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');) v.push_back(std::stoi(x));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  grpo::util::tune_malloc_for_cpu_tensors();  // as the grpo binary does (malloc_tuning.h)
  std::string model_dir, tok_path, dtype = "float32", batches_s = "1,16,64";
  int threads = 2, new_tokens = 64, prompt_len = 32, gemm_n = 2048;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--tokenizer") tok_path = v;
    else if (k == "--dtype") dtype = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batches") batches_s = v;
    else if (k == "--new") new_tokens = std::stoi(v);
    else if (k == "--prompt-len") prompt_len = std::stoi(v);
    else if (k == "--gemm") gemm_n = std::stoi(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (model_dir.empty() || tok_path.empty() || (dtype != "float32" && dtype != "bfloat16") || new_tokens < 2) {
    std::cerr << "usage: bench_bf16_cpu_bench --model DIR --tokenizer FILE --dtype float32|bfloat16 [--threads 2]"
                 " [--batches 1,16,64] [--new 64] [--prompt-len 32] [--gemm 2048]\n";
    return 2;
  }
  try {
    torch::set_num_threads(threads);
    const bool bf16 = dtype == "bfloat16";
    nlohmann::json j;
    j["dtype"] = dtype;
    j["threads"] = torch::get_num_threads();
    if (gemm_n > 0) j["gemm_gflops"] = gemm_gflops(gemm_n, bf16 ? torch::kBFloat16 : torch::kFloat32);

    auto model = grpo::model::load_model(model_dir);
    model->eval();
    auto tok = grpo::tok::load_tokenizer(tok_path);
    grpo::rollout::SamplingParams p;  // temperature 1, no filters, fixed lengths
    p.ignore_eos = true;
    // Batch b: b / 8 prompts x 8 completions (b < 8: b prompts x 1), random ids of prompt_len tokens.
    torch::manual_seed(0);
    const int64_t V = model->spec().vocab_size;
    for (int b : parse_list(batches_s)) {
      const int G = b >= 8 ? 8 : 1, P = b / G;
      std::vector<std::vector<int64_t>> prompts(P);
      for (auto& pr : prompts) {
        auto ids = torch::randint(0, V, {prompt_len}, torch::kInt64);
        pr.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + prompt_len);
      }
      auto run = [&](int n_new) {
        p.max_completion_length = n_new;
        grpo::rollout::RolloutEngine engine(model, *tok, p, grpo::rollout::EngineLimits{b, 0});
        engine.set_bf16(bf16);
        if (engine.bf16_active() != bf16) throw std::runtime_error("bf16 rollout not active on this model");
        auto t0 = Clock::now();
        auto out = engine.generate(prompts, G, 1234);
        const double s = since(t0);
        for (const auto& c : out)
          if (c.completion_length != n_new) throw std::runtime_error("completion of the wrong length");
        return s;
      };
      run(4);  // warm-up: allocator, thread pool, oneDNN kernels of these shapes
      // As bench_rollout_bench: decode = the extra time of (new - 1) more tokens per row; best of 2.
      double best = 0;
      for (int r = 0; r < 2; ++r) {
        const double t1 = run(1), tn = run(new_tokens);
        best = std::max(best, double(b) * (new_tokens - 1) / (tn - t1));
      }
      j["decode"][std::to_string(b)] = best;
    }
    j["new_tokens"] = new_tokens;
    j["prompt_len"] = prompt_len;
    j["parameters"] = model->spec().parameter_count();
    j["peak_rss_mb"] = peak_rss_mb();
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_bf16_cpu_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
