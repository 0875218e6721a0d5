// Sharded data parallel (distributed.sharding) on this machine: per-rank peak bytes of parameters
// + gradients + AdamW state, and step time, of a ~100M-parameter grpo Transformer trained by 1, 2
// and 3 CPU processes over Gloo with sharding none (DDP beyond one process), optimizer and full.
// Bytes are the storages of the actual tensors (model parameters, their gradients, AdamW moments,
// shards and gathered buffers; activations not included), sampled at the points where they peak.
//   build/bin/bench_shard_bench [--steps 2] [--layers 32] [--hidden 512] [--tokens 64]
// Each configuration is started through grpo's own launcher (grpo::dist::launch_workers).
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "multiprocess_bench.h"
#include "grpo/dist/distributed.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/launcher.h"
#include "grpo/dist/sharding.h"
#include "grpo/model/transformer.h"

namespace {

using grpo::bench::Clock;
using grpo::bench::ms_since;

grpo::model::ModelSpec spec(const std::map<std::string, std::string>& f) {
  grpo::model::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.hidden_size = std::stoi(f.at("hidden"));
  s.intermediate_size = s.hidden_size * 11 / 4;
  s.num_hidden_layers = std::stoi(f.at("layers"));
  s.num_attention_heads = s.hidden_size / 64;
  s.num_key_value_heads = s.num_attention_heads;
  s.head_dim = 64;
  s.vocab_size = 8192;
  s.max_position_embeddings = 512;
  return s;
}

// Bytes of the distinct storages of parameters, gradients and AdamW state (sharding none).
int64_t replicated_bytes(grpo::model::Transformer& m, torch::optim::AdamW& opt) {
  std::set<const void*> seen;
  int64_t b = 0;
  auto add = [&](const torch::Tensor& t) {
    if (t.defined() && seen.insert(t.storage().unsafeGetStorageImpl()).second) b += static_cast<int64_t>(t.storage().nbytes());
  };
  for (auto& p : m->parameters()) add(p), add(p.grad());
  for (auto& [k, st] : opt.state()) {
    auto& s = static_cast<torch::optim::AdamWParamState&>(*st);
    add(s.exp_avg()), add(s.exp_avg_sq());
  }
  return b;
}

int worker(const std::map<std::string, std::string>& f) {
  torch::set_num_threads(1);
  grpo::config::DistributedConfig dc;
  dc.timeout_s = 600;
  dc.sharding = *grpo::config::enum_from_name<grpo::config::ShardingMode>(f.at("mode"));
  auto d = grpo::dist::Distributed::create(dc, "cpu");
  torch::manual_seed(0);
  grpo::model::Transformer model(spec(f));
  const int steps = std::stoi(f.at("steps"));
  const int64_t T = std::stoll(f.at("tokens"));
  auto ids = torch::randint(8192, {1, T}, torch::kInt64);
  auto loss_of = [&] {
    auto h = model->forward(ids).hidden;
    return torch::log_softmax(model->logits(h), -1).mean().neg();
  };
  std::unique_ptr<grpo::dist::Sharder> sharder;
  std::unique_ptr<torch::optim::AdamW> opt;
  std::unique_ptr<grpo::dist::GradientReducer> reducer;
  if (dc.sharding != grpo::config::ShardingMode::NONE) {
    sharder = std::make_unique<grpo::dist::Sharder>(d, model, grpo::dist::ShardOptions::from_config(dc, {}, false));
  } else {
    opt = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-4));
    if (d->world_size() > 1) reducer = std::make_unique<grpo::dist::GradientReducer>(d, model->parameters());
  }
  double ms = 0;
  int64_t peak = 0;
  for (int s = -1; s < steps; ++s) {  // one warm-up step
    d->barrier();
    auto t0 = Clock::now();
    loss_of().backward();
    if (sharder) {
      sharder->step(1e-4, 1.0);
      peak = sharder->peak_held_bytes();
    } else {
      if (reducer) reducer->synchronize();
      torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
      opt->step();
      peak = std::max(peak, replicated_bytes(model, *opt));
      opt->zero_grad();
    }
    if (s >= 0) ms += ms_since(t0);
  }
  // Every rank's peak: the largest is the figure (ranks own slices of different sizes).
  auto all = d->all_gather_string(std::to_string(peak));
  int64_t worst = 0;
  for (const auto& v : all) worst = std::max<int64_t>(worst, std::stoll(v));
  if (sharder) sharder->gather_full();  // collective; whole parameters to count them
  if (d->rank() == 0) {
    int64_t n = 0;
    for (auto& p : model->parameters()) n += p.numel();
    std::ofstream(f.at("out")) << ms / steps << " " << worst << " " << n << "\n";
  }
  d->barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto f = grpo::bench::flags(argc, argv);
  f.emplace("steps", "2");
  f.emplace("layers", "32");
  f.emplace("hidden", "512");
  f.emplace("tokens", "64");
  if (f.count("out")) return worker(f);
  const std::string self = grpo::bench::self_exe();
  if (self.empty()) return 1;
  const auto out = std::filesystem::temp_directory_path() / ("grpo_shard_bench_" + std::to_string(::getpid()));
  const std::vector<std::pair<std::string, int>> configs = {{"none", 1}, {"none", 2},      {"none", 3}, {"optimizer", 2},
                                                            {"optimizer", 3}, {"full", 1}, {"full", 2}, {"full", 3}};
  std::vector<std::array<double, 3>> res;
  for (const auto& [mode, nproc] : configs) {
    auto v = grpo::bench::launch_and_read(self, nproc,
                                          {"--out", out.string(), "--mode", mode, "--steps", f["steps"], "--layers",
                                           f["layers"], "--hidden", f["hidden"], "--tokens", f["tokens"]},
                                          out, "shard_bench: " + mode + " x" + std::to_string(nproc));
    if (!v) return 1;
    res.push_back(*v);
  }
  std::filesystem::remove(out);
  std::printf("shard_bench: %.1f M parameters (%s layers, hidden %s, vocab 8192 tied), %s tokens per rank per step, %s steps, "
              "1 thread per process\n",
              res[0][2] / 1e6, f["layers"].c_str(), f["hidden"].c_str(), f["tokens"].c_str(), f["steps"].c_str());
  std::printf("%-10s %6s %12s %18s %16s\n", "sharding", "nproc", "step ms", "peak MiB per rank", "vs unsharded");
  for (size_t i = 0; i < configs.size(); ++i)
    std::printf("%-10s %6d %12.1f %18.1f %16.3f\n", configs[i].first.c_str(), configs[i].second, res[i][0],
                res[i][1] / double(1 << 20), res[i][1] / res[0][1]);
  std::printf("(none at 2-3 processes is DDP; peak = parameters + gradients + AdamW state, the largest rank's)\n");
  return 0;
}
