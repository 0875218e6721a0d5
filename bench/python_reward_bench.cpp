// The `python` reward's cost per step: scoring N completions with a trivial TRL-style reward
//   (a) in-process Python (the TRL way: the trainer calls the function; timed inside python3),
//   (b) the persistent sandboxed worker (PythonReward::score_batch: one round trip per batch),
//   (c) one sandbox run per completion (SandboxPool over the same sandbox, reward.sandbox.num_workers).
// Prints ms per step for each and the worker's overhead over (a) (target: < 20 ms per batch).
//   bench_python_reward_bench [completions=64] [steps=20]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo/reward/python_reward.h"
#include "grpo/reward/sandbox.h"
#include "grpo/reward/sandbox_pool.h"

namespace {

const char* kReward = R"(import re


def reward_len(completions, **kwargs):
    return [-abs(20 - len(c)) / 20.0 + (1.0 if re.search(r"\d", c) else 0.0) for c in completions]
)";

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string completion(int i) { return "The answer is " + std::to_string(i * 7919 % 1000) + std::string(i % 30, '.'); }

// (a) in python3 itself: the mean time of one call over `steps` calls, as TRL pays it.
double in_process_ms(const std::string& file, int n, int steps) {
  std::string script = "import importlib.util, time, sys\n"
                       "spec = importlib.util.spec_from_file_location('r', '" + file + "')\n"
                       "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                       "cs = ['The answer is ' + str(i * 7919 % 1000) + '.' * (i % 30) for i in range(" + std::to_string(n) + ")]\n"
                       "m.reward_len(completions=cs)\n"
                       "t0 = time.perf_counter()\n"
                       "for _ in range(" + std::to_string(steps) + "): m.reward_len(prompts=['p'] * len(cs), completions=cs, completion_ids=None)\n"
                       "print((time.perf_counter() - t0) * 1000 / " + std::to_string(steps) + ")\n";
  std::string path = file + ".inproc.py";
  std::ofstream(path) << script;
  FILE* p = popen(("python3 " + path).c_str(), "r");
  double ms = -1;
  if (p && fscanf(p, "%lf", &ms) != 1) ms = -1;
  if (p) pclose(p);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 64;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 20;
  const std::string dir = std::filesystem::temp_directory_path() / ("grpo_python_reward_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/bench_reward.py";
  std::ofstream(file) << kReward;

  std::vector<grpo::reward::RewardInput> batch;
  for (int i = 0; i < n; ++i) batch.push_back({"Question?", completion(i), {{"answer", i}}, 0});

  const double a = in_process_ms(file, n, steps);

  grpo::config::SandboxConfig sb_cfg;
  grpo::config::PythonParams p;
  p.file = file;
  p.function = "reward_len";
  grpo::reward::PythonReward worker(p, sb_cfg);
  auto first = worker.score_batch(batch);  // starts the worker (and imports the file): not a step
  auto t0 = std::chrono::steady_clock::now();
  double checksum = 0;
  for (int s = 0; s < steps; ++s)
    for (float v : worker.score_batch(batch).values) checksum += v;
  const double b = ms_since(t0) / steps;

  // (c) the same function, one sandbox run per completion (the worker's file imported each time).
  grpo::reward::Sandbox sandbox(sb_cfg);
  grpo::reward::SandboxPool pool(sandbox);
  std::vector<grpo::reward::SandboxJob> jobs;
  for (int i = 0; i < n; ++i) {
    grpo::reward::SandboxJob j;
    j.request.source = "import json, sys\nfrom bench_reward import reward_len\n"
                       "print(reward_len(completions=[json.load(sys.stdin)])[0])\n";
    j.request.files = {{"bench_reward.py", kReward}};
    j.stdins = {nlohmann::json(completion(i)).dump()};
    jobs.push_back(std::move(j));
  }
  const int c_steps = std::max(1, steps / 5);
  t0 = std::chrono::steady_clock::now();
  int bad = 0;
  for (int s = 0; s < c_steps; ++s)
    for (const auto& r : pool.run_batch(jobs))
      if (r.at(0).status != grpo::reward::SandboxStatus::OK) ++bad;
  const double c = ms_since(t0) / c_steps;

  std::printf("python reward, %d completions per step (trivial TRL-style function):\n", n);
  std::printf("  (a) in-process python (TRL way)        %8.2f ms/step  (%d steps)\n", a, steps);
  std::printf("  (b) persistent sandboxed worker        %8.2f ms/step  (%d steps; first batch with start-up excluded)\n", b, steps);
  std::printf("  (c) one sandbox run per completion     %8.2f ms/step  (%d steps, %d workers, %d failed runs)\n", c, c_steps,
              pool.num_workers(), bad);
  std::printf("  worker overhead over in-process: %.2f ms per batch (target < 20 ms); (c)/(b) = %.0fx\n", b - a, c / b);
  std::printf("  (checksum %.3f, masked in first batch %d)\n", checksum, int(std::count(first.masked.begin(), first.masked.end(), 1)));
  std::filesystem::remove_all(dir);
  return 0;
}
