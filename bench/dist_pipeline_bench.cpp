// The GRPO stage of the real pipeline (grpo train) by 1 CPU process and by 2 processes over Gloo
// (grpo launch), at the same global batch: step time, its parts, and the wait for the gradient
// all-reduce. Prints one table; run with no arguments (build/bin/grpo must exist next to it):
//   build/bin/bench_dist_pipeline_bench [--steps 8] [--hidden 128] [--layers 4] [--keep DIR]
// The model is a dense Llama-style policy from random init (hidden 128, 4 layers: 0.61 M parameters
// with the task tokenizer), G = 8 completions of up to 32 tokens for 4 prompts per step
// (32 completions; 2 micro-batches), on tests/e2e_dist/dist-parity.yaml's arithmetic task. The
// first step (warm-up) is left out of the averages. Figures are the means over the steps of the
// metrics the pipeline logs (time/step, time/rollout, time/update, time/grad_sync), as rank 0
// logged them (time/step is rank 0's own; the others are means over ranks).
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 1; i + 1 < argc; i += 2) f[std::string(argv[i]).substr(2)] = argv[i + 1];
  return f;
}

fs::path self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return fs::current_path();
  buf[n] = 0;
  return fs::path(buf).parent_path();
}

struct Row {
  std::string what;
  int procs = 1, threads = 1;
  std::map<std::string, double> ms;  // metric -> mean ms per step
  double wall_s = 0;
};

}  // namespace

int main(int argc, char** argv) {
  auto f = flags(argc, argv);
  const int steps = f.count("steps") ? std::stoi(f["steps"]) : 8;
  const std::string hidden = f.count("hidden") ? f["hidden"] : "128";
  const std::string layers = f.count("layers") ? f["layers"] : "4";
  const fs::path bin = self_dir() / "grpo";
  fs::path src = fs::path(__FILE__).parent_path().parent_path();
  const fs::path cfg = src / "tests/e2e_dist/dist-parity.yaml";
  if (!fs::exists(bin) || !fs::exists(cfg)) {
    std::cerr << "need " << bin << " and " << cfg << "\n";
    return 2;
  }
  fs::path tmp = f.count("keep") ? fs::path(f["keep"]) : fs::temp_directory_path() / ("grpo_dist_pipeline_bench_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  const std::string common =
      " stages='[{kind: grpo, max_steps: " + std::to_string(steps) + "}]' model.hidden_size=" + hidden +
      " model.intermediate_size=" + std::to_string(2 * std::stoi(hidden)) + " model.num_hidden_layers=" + layers +
      " model.num_attention_heads=4 model.num_key_value_heads=2 model.moe.num_experts=0 rollout.max_completion_length=32"
      " grpo.num_generations=8 trainer.gradient_accumulation_steps=2 task.num_eval=0"
      " checkpoint.save_steps=0 logging.report_to='[jsonl]'";
  // Data and tokenizer once, shared by every run.
  const std::string prep = tmp / "prep";
  std::string cmd = bin.string() + " train " + cfg.string() + common + " stages='[{kind: grpo, max_steps: 1}]'" +
                    " trainer.per_device_train_batch_size=16 trainer.output_dir=" + prep + " tokenizer.path=" + prep +
                    "/tokenizer.model > " + (tmp / "prep.log").string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::cerr << "preparation run failed: see " << (tmp / "prep.log") << "\n";
    return 1;
  }
  const std::string inputs = " tokenizer.path=" + prep + "/tokenizer.model data.train_file=" + prep + "/data/train.jsonl";

  std::vector<Row> rows{{"1 process, 1 thread", 1, 1}, {"1 process, 2 threads", 1, 2}, {"2 processes, 1 thread each", 2, 1}};
  for (auto& r : rows) {
    const std::string out = (tmp / ("run-" + std::to_string(r.procs) + "x" + std::to_string(r.threads))).string();
    const int per_device = 16 / r.procs;
    std::string args = cfg.string() + common + inputs + " trainer.num_threads=" + std::to_string(r.threads) +
                       " trainer.per_device_train_batch_size=" + std::to_string(per_device) + " trainer.output_dir=" + out;
    std::string c = r.procs == 1 ? bin.string() + " train " + args
                                 : bin.string() + " launch --nproc " + std::to_string(r.procs) + " -- train " + args;
    c += " > " + out + ".log 2>&1";
    auto t0 = std::chrono::steady_clock::now();
    if (std::system(c.c_str()) != 0) {
      std::cerr << r.what << ": run failed, see " << out << ".log\n";
      return 1;
    }
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ifstream in(out + "/metrics.jsonl");
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.value("step", 0) <= 1) continue;  // warm-up
      ++n;
      for (const char* k : {"time/step", "time/rollout", "time/reward", "time/update", "time/grad_sync"})
        r.ms[k] += j.contains(k) ? 1000.0 * j[k].get<double>() : 0.0;
    }
    for (auto& [k, v] : r.ms) v /= std::max(1, n);
  }
  std::printf("GRPO stage, hidden %s, %s layers, 4 prompts x 8 completions per step, mean of steps 2..%d\n\n", hidden.c_str(),
              layers.c_str(), steps);
  std::printf("| run | step ms | rollout ms | reward ms | update ms | grad all-reduce wait ms | speed-up |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  const double base = rows[0].ms["time/step"];
  for (auto& r : rows)
    std::printf("| %s | %.0f | %.0f | %.1f | %.0f | %.1f | %.2fx |\n", r.what.c_str(), r.ms["time/step"], r.ms["time/rollout"],
                r.ms["time/reward"], r.ms["time/update"], r.ms["time/grad_sync"], base / r.ms["time/step"]);
  if (!f.count("keep")) fs::remove_all(tmp);
  return 0;
}
