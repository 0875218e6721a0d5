// Worker program of the distributed tests (started by grpo launch, torchrun --no-python or the
// tests themselves): trains a small stand-in model with data parallelism and writes what rank 0
// ends with, so a test can compare 1 and 2 processes. Not part of grpo; no test-only subcommands.
//
//   dist_worker train --out PREFIX [--steps 5] [--batch 8] [--bucket-bytes N] [--timeout S]
//                     [--die-rank R --die-step K] [--hang-rank R --hang-step K] [--local-normalizer 1]
//   dist_worker fingerprint --config TEXT [--config-rank1 TEXT] [--timeout S]
//   dist_worker nccl-selftest   (one GPU: an NCCL group of one, every collective and the reducer)
//   dist_worker buckets [--timeout S]   (the reducer's buckets, overlap and results; see below)
#include <ATen/record_function.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <thread>

#include "grpo/dist/distributed.h"
#include "grpo/dist/fingerprint.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/rank_rng.h"
#include "grpo/util/error.h"

namespace {

using grpo::dist::Distributed;
using grpo::dist::ReduceOp;

std::map<std::string, std::string> parse_flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> f;
  for (int i = first; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) throw grpo::InputError("expected --flag value, got " + k);
    f[k.substr(2)] = argv[i + 1];
  }
  return f;
}

std::string flag(const std::map<std::string, std::string>& f, const std::string& k, const std::string& def) {
  auto it = f.find(k);
  return it == f.end() ? def : it->second;
}

// A tiny language model: embedding -> tanh MLP -> vocabulary logits, one prediction per position.
struct TinyLmImpl : torch::nn::Module {
  static constexpr int64_t kVocab = 16, kDim = 8, kHidden = 16;
  torch::nn::Embedding emb{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  TinyLmImpl() {
    emb = register_module("emb", torch::nn::Embedding(kVocab, kDim));
    fc1 = register_module("fc1", torch::nn::Linear(kDim, kHidden));
    fc2 = register_module("fc2", torch::nn::Linear(kHidden, kVocab));
  }
  torch::Tensor forward(const torch::Tensor& tokens) {  // [b, t] int64 -> [b, t, V] float32
    return fc2(torch::tanh(fc1(emb(tokens))));
  }
};
TORCH_MODULE(TinyLm);

// The whole global batch, identical on every rank (fixed seed): tokens, targets, a per-sequence
// weight standing in for the GRPO advantage, and a mask of variable completion lengths.
struct Batch {
  torch::Tensor tokens, targets, weight, mask;  // [B, T] int64, [B, T] int64, [B] float32, [B, T] float32
  Batch slice(int64_t from, int64_t n) const {
    return {tokens.narrow(0, from, n), targets.narrow(0, from, n), weight.narrow(0, from, n), mask.narrow(0, from, n)};
  }
};

Batch make_global_batch(int64_t batch, int step) {
  constexpr int64_t kT = 6;
  auto g = grpo::dist::make_rank_generator(1234, /*rank=*/0, /*stream=*/step);
  Batch b;
  b.tokens = torch::randint(TinyLmImpl::kVocab, {batch, kT}, g, torch::kInt64);
  b.targets = torch::randint(TinyLmImpl::kVocab, {batch, kT}, g, torch::kInt64);
  b.weight = torch::randn({batch}, g, torch::kFloat32);
  auto lengths = torch::randint(1, kT + 1, {batch, 1}, g, torch::kInt64);
  b.mask = (torch::arange(kT).unsqueeze(0) < lengths).to(torch::kFloat32);
  return b;
}

// Per-token policy-gradient-like loss: -weight * log p(target), [b, T] float32.
torch::Tensor token_loss(TinyLm& model, const Batch& b) {
  auto logp = torch::log_softmax(model->forward(b.tokens), -1);
  auto lp = logp.gather(-1, b.targets.unsqueeze(-1)).squeeze(-1);
  return -b.weight.unsqueeze(-1) * lp;
}

void write_params(TinyLm& model, const std::string& path) {
  std::ofstream out(path);
  for (const auto& p : model->parameters()) {
    auto flat = p.detach().to(torch::kFloat64).reshape(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g\n", flat[i].item<double>());
      out << buf;
    }
  }
  if (!out) throw grpo::Error("cannot write " + path);
}

enum class Loss { DAPO, GRPO };

// Trains `steps` AdamW steps; each step takes this rank's share of a global batch and runs
// `micro` micro-batches (gradient accumulation). Returns the summed token count and loss sum.
std::pair<double, double> train(const std::shared_ptr<Distributed>& dp, Loss loss_kind, bool overlap, int steps, int64_t global_batch, int micro,
                                int64_t bucket_bytes, const std::map<std::string, std::string>& f) {
  Distributed& d = *dp;
  const int W = d.world_size(), R = d.rank();
  GRPO_REQUIRE(global_batch % (W * micro) == 0, "batch must divide into ranks x micro-batches");
  torch::manual_seed(1000 + R);  // ranks start from different weights: broadcast must fix that
  TinyLm model;
  auto params = model->parameters();
  d.broadcast(params, 0);
  grpo::dist::GradientReducer reducer(dp, params, {bucket_bytes, overlap});
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
  const int die_rank = std::stoi(flag(f, "die-rank", "-1")), die_step = std::stoi(flag(f, "die-step", "-1"));
  const int hang_rank = std::stoi(flag(f, "hang-rank", "-1")), hang_step = std::stoi(flag(f, "hang-step", "-1"));
  double tokens_total = 0, loss_total = 0;
  for (int step = 0; step < steps; ++step) {
    if (R == die_rank && step == die_step) ::raise(SIGKILL);
    if (R == hang_rank && step == hang_step)
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    const int64_t local = global_batch / W, mb = local / micro;
    Batch mine = make_global_batch(global_batch, step).slice(R * local, local);
    opt.zero_grad();
    // dapo: one normaliser for the whole global step (all micro-batches, all ranks).
    // --local-normalizer 1 is the classic mistake (each rank divides by its own token count);
    // a test runs it to show the comparison with one process catches it.
    const double local_tokens = mine.mask.sum().item<double>();
    const double norm = flag(f, "local-normalizer", "0") == "1" ? local_tokens : d.global_normalizer(local_tokens);
    for (int m = 0; m < micro; ++m) {
      Batch b = mine.slice(m * mb, mb);
      reducer.set_sync(m == micro - 1);
      auto tl = token_loss(model, b) * b.mask;
      torch::Tensor loss;
      if (loss_kind == Loss::DAPO) {
        loss = tl.sum() / norm;
      } else {
        // grpo: mean over this rank's sequences of each sequence's token mean; the reducer's
        // averaging over ranks makes it a mean of per-process means.
        loss = (tl.sum(-1) / b.mask.sum(-1)).mean() / micro;
      }
      loss.backward();
      tokens_total += b.mask.sum().item<double>();
      loss_total += tl.sum().item<double>();
    }
    reducer.synchronize();
    opt.step();
  }
  if (R == 0) write_params(model, flag(f, "out", "") + (loss_kind == Loss::DAPO ? ".dapo.txt" : ".grpo.txt"));
  return {tokens_total, loss_total};
}

// World size 1 over NCCL on cuda:0 (LOCAL_RANK 0): the path a GPU machine takes, checked on
// values known by hand.
int nccl_selftest(grpo::config::DistributedConfig cfg) {
  cfg.backend = grpo::config::DistBackend::NCCL;
  auto d = Distributed::create(cfg, "cuda", grpo::dist::read_launch_env(), /*force_group=*/true);
  GRPO_CHECK(d->has_group() && d->device().is_cuda(), "no NCCL group on CUDA");
  auto t = torch::tensor({1.0f, 2.0f}, torch::kCUDA);
  d->all_reduce(t, ReduceOp::MEAN);
  GRPO_CHECK(torch::equal(t.cpu(), torch::tensor({1.0f, 2.0f})), "all_reduce");
  auto cpu = torch::tensor({5.0});  // staged through the GPU
  d->all_reduce(cpu, ReduceOp::MAX);
  GRPO_CHECK(cpu.item<double>() == 5.0, "staged all_reduce");
  auto m = d->all_reduce(std::map<std::string, double>{{"a", 3.0}}, ReduceOp::SUM);
  GRPO_CHECK(m["a"] == 3.0, "metrics");
  d->barrier();
  torch::manual_seed(0);
  TinyLm model;
  model->to(d->device());
  auto params = model->parameters();
  d->broadcast(params);
  grpo::dist::GradientReducer reducer(d, params, {256, true});
  Batch b = make_global_batch(4, 0);
  b = {b.tokens.to(d->device()), b.targets.to(d->device()), b.weight.to(d->device()), b.mask.to(d->device())};
  (token_loss(model, b) * b.mask).sum().backward();
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.grad().clone());
  reducer.synchronize();
  for (size_t i = 0; i < params.size(); ++i) GRPO_CHECK(torch::equal(before[i], params[i].grad()), "reducer changed a gradient");
  torch::cuda::synchronize();
  std::cout << "nccl-selftest: ok (" << reducer.num_buckets() << " buckets on " << d->device().str() << ")\n";
  return 0;
}

// Gloo all-reduces issued by this process, counted where c10d records them ("gloo:all_reduce",
// a RecordFunction of scope USER_SCOPE made when the work is enqueued), not by the reducer.
std::atomic<int> g_allreduces{0};
at::CallbackHandle count_allreduces() {
  return at::addGlobalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()).find("all_reduce") != std::string::npos) ++g_allreduces;
        return nullptr;
      })
          .needsInputs(false)
          .scopes({at::RecordScope::USER_SCOPE}));
}

// The reducer as the trainer builds it (GradReducerOptions::from_config), on a float64 TinyLm
// whose parameter tensors are, in the reducer's (reverse) order: fc2.bias 128 B, fc2.weight
// 2048 B, fc1.bias 128 B, fc1.weight 1024 B, emb.weight 1024 B (4352 B in all). For each cap,
// overlap and micro-batch count, one step; rank 0 prints one line per case:
//   case cap_bytes=C overlap=O micro=M buckets=N allreduces=K mid_backward=A after_backward=B max_abs_diff=D
// allreduces: Gloo all-reduces of the step (counted by c10d's RecordFunction); mid_backward:
// buckets launched when the gradient reaches the embedding's output (fc1 and fc2 done, the
// embedding not yet: backward is not finished); after_backward: launched when backward()
// returned; max_abs_diff: the reducer's averages against one all-reduce per tensor (SUM / W).
int buckets_selftest(const std::shared_ptr<Distributed>& d) {
  auto handle = count_allreduces();
  torch::manual_seed(7);
  TinyLm model;
  model->to(torch::kFloat64);
  auto params = model->parameters();
  d->broadcast(params, 0);
  const int W = d->world_size(), R = d->rank();
  struct Case {
    int64_t cap_bytes;
    bool overlap;
    int micro;
  };
  for (Case c : {Case{4352, true, 1}, Case{2176, true, 1}, Case{2176, false, 1}, Case{1, true, 1}, Case{2176, true, 2},
                 Case{2176, false, 2}}) {
    grpo::config::DistributedConfig cfg;
    cfg.ddp_bucket_cap_mb = static_cast<double>(c.cap_bytes) / (1 << 20);
    cfg.overlap_grad_reduce = c.overlap;
    grpo::dist::GradientReducer reducer(d, params, grpo::dist::GradReducerOptions::from_config(cfg));
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    Batch mine = make_global_batch(8, 0).slice(R * (8 / W), 8 / W);
    const int64_t mb = mine.tokens.size(0) / c.micro;
    const int before = g_allreduces.load();
    int mid = -1, after = -1;
    for (int m = 0; m < c.micro; ++m) {
      Batch b = mine.slice(m * mb, mb);
      reducer.set_sync(m == c.micro - 1);
      auto h = model->emb(b.tokens);
      if (m == c.micro - 1) h.register_hook([&](const torch::Tensor&) { mid = reducer.launched_this_step(); });
      auto logp = torch::log_softmax(model->fc2(torch::tanh(model->fc1(h))), -1);
      auto lp = logp.gather(-1, b.targets.unsqueeze(-1)).squeeze(-1);
      ((-b.weight.unsqueeze(-1).to(torch::kFloat64) * lp) * b.mask).sum().backward();
    }
    after = reducer.launched_this_step();
    std::vector<torch::Tensor> local;
    for (auto& p : params) local.push_back(p.grad().clone());
    reducer.synchronize();
    const int issued = g_allreduces.load() - before;
    double diff = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      d->all_reduce(local[i], ReduceOp::SUM);
      local[i].div_(W);
      diff = std::max(diff, (local[i] - params[i].grad()).abs().max().item<double>());
    }
    if (R == 0)
      std::cout << "case cap_bytes=" << c.cap_bytes << " overlap=" << c.overlap << " micro=" << c.micro
                << " buckets=" << reducer.num_buckets() << " allreduces=" << issued << " mid_backward=" << mid
                << " after_backward=" << after << " max_abs_diff=" << diff << std::endl;
  }
  at::removeCallback(handle);
  d->barrier();
  return 0;
}

int run(int argc, char** argv) {
  GRPO_REQUIRE(argc >= 2, "usage: dist_worker train|fingerprint [--flag value]...");
  const std::string mode = argv[1];
  auto f = parse_flags(argc, argv, 2);
  grpo::config::DistributedConfig cfg;
  cfg.timeout_s = std::stod(flag(f, "timeout", "30"));
  if (mode == "nccl-selftest") return nccl_selftest(cfg);
  cfg.backend = grpo::config::DistBackend::GLOO;
  auto d = Distributed::create(cfg, "cpu");
  if (mode == "fingerprint") {
    std::string text = flag(f, "config", "a: 1");
    if (d->rank() == 1 && f.count("config-rank1")) text = f.at("config-rank1");
    d->check_same_fingerprint(grpo::dist::run_fingerprint(text));
    std::cout << "rank " << d->rank() << ": fingerprints agree\n";
    return 0;
  }
  if (mode == "buckets") return buckets_selftest(d);
  GRPO_REQUIRE(mode == "train", "unknown mode ", mode);
  const int steps = std::stoi(flag(f, "steps", "5"));
  const int64_t batch = std::stoll(flag(f, "batch", "8"));
  const int64_t bucket = std::stoll(flag(f, "bucket-bytes", "256"));
  auto [tok_a, loss_a] = train(d, Loss::DAPO, /*overlap=*/true, steps, batch, /*micro=*/2, bucket, f);
  auto [tok_b, loss_b] = train(d, Loss::GRPO, /*overlap=*/false, steps, batch, /*micro=*/1, bucket, f);
  auto sums = d->all_reduce(std::map<std::string, double>{{"tokens", tok_a + tok_b}, {"loss", loss_a + loss_b}},
                            ReduceOp::SUM);
  const double r = d->rank();
  const double mn = d->all_reduce(r, ReduceOp::MIN), mx = d->all_reduce(r, ReduceOp::MAX),
               mean = d->all_reduce(r, ReduceOp::MEAN);
  d->barrier();
  if (d->rank() == 0) {
    std::ofstream out(flag(f, "out", "") + ".metrics.txt");
    char buf[200];
    std::snprintf(buf, sizeof buf, "tokens %.17g\nloss %.17g\nrank_min %g\nrank_max %g\nrank_mean %g\nworld %d\n",
                  sums["tokens"], sums["loss"], mn, mx, mean, d->world_size());
    out << buf;
  }
  std::cout << "rank " << d->rank() << ": done\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const grpo::InputError& e) {
    std::cerr << "dist_worker: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dist_worker: error: " << e.what() << "\n";
    return 1;
  }
}
