// Data-parallel step time on this machine: the same global batch trained by 1 CPU process (with
// one thread, and with every core) and by 2 processes over Gloo with one thread each, the
// bucketed gradient all-reduce overlapped with backward; plus the time of one all-reduce of a
// 25 MiB buffer. Prints one table; run with no arguments:
//   build/bin/bench_dist_bench [--steps 10] [--batch 64] [--width 1024]
// Each configuration is started through grpo's own launcher (grpo::dist::launch_workers).
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "multiprocess_bench.h"
#include "grpo/dist/distributed.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/launcher.h"

namespace {

using grpo::bench::Clock;
using grpo::bench::ms_since;

int worker(const std::map<std::string, std::string>& f) {
  const int steps = std::stoi(f.at("steps")), width = std::stoi(f.at("width"));
  torch::set_num_threads(std::stoi(f.at("threads")));
  const int64_t batch = std::stoll(f.at("batch"));
  grpo::config::DistributedConfig cfg;
  cfg.timeout_s = 120;
  auto d = grpo::dist::Distributed::create(cfg, "cpu");
  torch::manual_seed(0);
  // The stand-in model: a 4-layer MLP (4 x width^2 parameters: 4.2 M, 16.8 MB at width 1024).
  torch::nn::Sequential model(torch::nn::Linear(width, width), torch::nn::Tanh(), torch::nn::Linear(width, width),
                              torch::nn::Tanh(), torch::nn::Linear(width, width), torch::nn::Tanh(),
                              torch::nn::Linear(width, width));
  auto params = model->parameters();
  d->broadcast(params);
  grpo::dist::GradientReducer reducer(d, params, {static_cast<int64_t>(cfg.ddp_bucket_cap_mb * (1 << 20)), true});
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4));
  const int64_t local = batch / d->world_size();
  auto x = torch::randn({local, width}), y = torch::randn({local, width});
  double step_ms = 0, wait_ms = 0;
  for (int s = -2; s < steps; ++s) {  // two warm-up steps
    auto t0 = Clock::now();
    opt.zero_grad();
    torch::mse_loss(model->forward(x), y).backward();
    reducer.synchronize();
    opt.step();
    if (s >= 0) {
      step_ms += ms_since(t0);
      wait_ms += reducer.last_wait_seconds() * 1000;
    }
  }
  auto buf = torch::ones({(25 << 20) / 4});
  double ar_ms = 0;
  for (int s = -1; s < steps; ++s) {
    d->barrier();
    auto t0 = Clock::now();
    d->all_reduce(buf, grpo::dist::ReduceOp::SUM);
    if (s >= 0) ar_ms += ms_since(t0);
  }
  if (d->rank() == 0) {
    std::ofstream(f.at("out")) << step_ms / steps << " " << wait_ms / steps << " " << ar_ms / steps << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto f = grpo::bench::flags(argc, argv);
  if (f.count("out")) return worker(f);
  f.emplace("steps", "10");
  f.emplace("batch", "64");
  f.emplace("width", "1024");
  const std::string self = grpo::bench::self_exe();
  if (self.empty()) return 1;
  const auto out = std::filesystem::temp_directory_path() / ("grpo_dist_bench_" + std::to_string(::getpid()));
  // (processes, threads per process): one process with one thread, one with every core, and
  // the data-parallel run with one thread per process.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const std::vector<std::pair<int, unsigned>> configs = {{1, 1u}, {1, hw}, {2, std::max(1u, hw / 2)}};
  std::vector<std::array<double, 3>> res;
  for (auto [nproc, threads] : configs) {
    auto v = grpo::bench::launch_and_read(self, nproc,
                                          {"--out", out.string(), "--steps", f["steps"], "--batch", f["batch"], "--width",
                                           f["width"], "--threads", std::to_string(threads)},
                                          out, "dist_bench");
    if (!v) return 1;
    res.push_back(*v);
  }
  std::filesystem::remove(out);
  std::printf("dist_bench: global batch %s, MLP width %s (%.1f M params), %s steps, %u hardware threads\n",
              f["batch"].c_str(), f["width"].c_str(), 4.0 * std::stod(f["width"]) * std::stod(f["width"]) / 1e6,
              f["steps"].c_str(), hw);
  std::printf("%6s %8s %10s %24s %22s\n", "nproc", "threads", "step ms", "grad all-reduce wait ms",
              "25 MiB all-reduce ms");
  for (size_t i = 0; i < configs.size(); ++i)
    std::printf("%6d %8u %10.1f %24.1f %22.1f\n", configs[i].first, configs[i].second, res[i][0], res[i][1], res[i][2]);
  std::printf("step time, 2 processes vs the faster 1-process row: %.2fx faster (load average matters: the\n"
              "rows share the machine with whatever else runs)\n",
              std::min(res[0][0], res[1][0]) / res[2][0]);
  return 0;
}
