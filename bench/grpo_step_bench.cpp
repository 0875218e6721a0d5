// One full GRPO optimizer step on the CPU, through the library's own GrpoStage (the code `grpo train`
// runs), broken into its phases: rollout, reward, logprobs (reference model, beta > 0), update
// (policy forward + backward + AdamW). Run by bench/grpo_step_vs_trl.py beside TRL's GRPOTrainer
// doing the same step on the same weights, prompts and lengths.
//
//   bench_grpo_step_bench --config run.yaml [--steps 3] [--warmup 1] [--threads N] [key=value ...]
//
// run.yaml is an ordinary grpo config (model.path, tokenizer, data.train_file, rollout, reward, grpo,
// trainer.per_device_train_batch_size, gradient_accumulation_steps). Prints one JSON line: per-phase
// seconds of each timed step, their medians, and the completion lengths (a fixed-length comparison
// needs a tokenizer without EOS: see the script).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpo/model/apply_kernels.h"
#include "grpo/config/config.h"
#include "grpo/reward/reward_set.h"
#include "grpo/train/grpo_stage.h"
#include "grpo/train/lora_policy.h"
#include "grpo/train/policy.h"
#include "grpo/util/malloc_tuning.h"

namespace {

// GrpoStage::train_step is the step StageRunner::run() calls; the bench calls it directly so that
// nothing else (checkpoints, metric files) is timed.
class BenchStage : public grpo::train::GrpoStage {
 public:
  using GrpoStage::GrpoStage;
  bool step(std::map<std::string, double>& m) { return train_step(m); }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

}  // namespace

int main(int argc, char** argv) {
  grpo::util::tune_malloc_for_cpu_tensors();  // as the grpo binary does (malloc_tuning.h)
  std::string config_path;
  int steps = 3, warmup = 1, threads = 0;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    try {
      if (k == "--config") config_path = value();
      else if (k == "--steps") steps = std::stoi(value());
      else if (k == "--warmup") warmup = std::stoi(value());
      else if (k == "--threads") threads = std::stoi(value());
      else if (k.find('=') != std::string::npos) overrides.push_back(k);
      else throw std::invalid_argument("unknown option " + k);
    } catch (const std::exception& e) {
      std::cerr << "bench_grpo_step_bench: " << e.what() << "\n";
      return 2;
    }
  }
  if (config_path.empty() || steps < 1) {
    std::cerr << "usage: bench_grpo_step_bench --config run.yaml [--steps 3] [--warmup 1] [--threads N] [key=value ...]\n";
    return 2;
  }
  try {
    if (threads > 0) torch::set_num_threads(threads);
    auto loaded = grpo::config::load_config(config_path, overrides);
    const auto& cfg = loaded.config;
    torch::manual_seed(static_cast<uint64_t>(cfg.trainer.seed));
    auto policy = grpo::train::load_policy(cfg);
    // As the trainer's pipeline does: kernels first, then LoRA (device_throughput.py's fused and fp8
    // rows time what kernels.* selects, not the plain model).
    grpo::model::apply_kernels(*policy.model, cfg.kernels);
    grpo::train::apply_config_lora(policy.model, cfg);  // lora.r > 0: adapters, base frozen, reference = base
    auto rewards = grpo::reward::RewardSet::from_config(cfg.reward);

    grpo::train::StageSettings ss;
    ss.kind = grpo::config::StageKind::GRPO;
    ss.max_steps = warmup + steps;
    ss.learning_rate = cfg.optimizer.learning_rate;
    ss.per_device_train_batch_size = cfg.trainer.per_device_train_batch_size;
    ss.dir = cfg.trainer.output_dir;
    BenchStage stage(cfg, ss, policy, nullptr, rewards, nullptr);

    const char* phases[] = {"time/rollout", "time/reward", "time/logprobs", "time/update"};
    std::map<std::string, std::vector<double>> t;
    double len_min = 1e300, len_max = 0, prompt_tokens = 0;
    for (int s = 0; s < warmup + steps; ++s) {
      std::map<std::string, double> m;
      auto t0 = std::chrono::steady_clock::now();
      stage.step(m);
      double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s < warmup) continue;
      for (const char* p : phases) t[std::string(p).substr(5)].push_back(m.count(p) ? m.at(p) : 0.0);
      t["total"].push_back(total);
      len_min = std::min(len_min, m["completions/length/min"]);
      len_max = std::max(len_max, m["completions/length/max"]);
      // tokens_per_generation counts prompt + completion tokens of every completion.
      const double rows = double(cfg.trainer.per_device_train_batch_size) * cfg.trainer.gradient_accumulation_steps;
      prompt_tokens = m["tokens_per_generation"] / rows - m["completions/length/mean"];
    }
    nlohmann::json j;
    j["impl"] = "grpo";
    j["threads"] = torch::get_num_threads();
    j["completions_per_step"] = int64_t(cfg.trainer.per_device_train_batch_size) * cfg.trainer.gradient_accumulation_steps;
    j["num_generations"] = cfg.grpo.num_generations;
    j["parameters"] = policy.model->spec().parameter_count();
    j["completion_length_min"] = len_min;
    j["completion_length_max"] = len_max;
    j["prompt_tokens_mean"] = prompt_tokens;  // of the last step
    j["steps"] = t;
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    j["peak_rss_mib"] = double(ru.ru_maxrss) / 1024.0;  // ru_maxrss: KiB on Linux
    j["lora_r"] = cfg.lora.r;
    for (auto& [k, v] : t) j["median"][k] = median(v);
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_grpo_step_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
