// Worker program of the sharding tests (started by grpo launch): trains a tiny grpo Transformer
// (dense or MoE) for a few AdamW steps with distributed.sharding none / optimizer / full, and
// writes what rank 0 ends with plus what this process observed of c10d, so that a test can
// compare world sizes and see which path ran. Not part of grpo.
//
//   dist_shard_worker --out PREFIX [--mode none|optimizer|full] [--moe 0|1] [--steps 3] [--micro 2]
//                     [--reshard 1] [--fprefetch 1] [--bprefetch 1] [--bucket-mb 25] [--ckpt 0|1] [--generate N] [--bf16 0|1]
//                     [--ref 0|1] [--autocast 0|1] [--layers 3]
//
// PREFIX.weights.txt: every trainable parameter (named_parameters order), one value a line, rank 0.
// PREFIX.rank-R.txt: "key value" lines: gathers, allreduces, launches, gg_pairs (two all-gathers
// launched back to back by this process's main thread, with no matmul between: only a prefetch
// does that), peak_bytes, world, ckpt_equal, the --ref keys (ref_*: see reference_check), the
// rollout-copy keys (see the step loop), and last the event string (G all-gather, R all-reduce on
// Gloo's threads; L a gather launch and M a matmul on the main thread; | between steps).
// Collectives are counted where c10d records them (RecordFunction "gloo:all_gather" etc., on
// Gloo's worker thread when the collective runs), not by the sharder; launches by the sharder's
// profiler range (dist::kAllGatherLaunchRecord), whose count the tests hold equal to c10d's.
#include <ATen/record_function.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <cctype>
#include <vector>

#include "grpo/dist/distributed.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/rank_rng.h"
#include "grpo/dist/sharded_reference.h"
#include "grpo/dist/sharding.h"
#include "grpo/model/bf16_autocast.h"
#include "grpo/model/transformer.h"
#include "grpo/util/error.h"
#include "common/alloc_counter.h"

namespace {

using grpo::dist::Distributed;

std::map<std::string, std::string> parse_flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 1; i + 1 < argc; i += 2) f[std::string(argv[i]).substr(2)] = argv[i + 1];
  return f;
}
std::string flag(const std::map<std::string, std::string>& f, const std::string& k, const std::string& d) {
  auto it = f.find(k);
  return it == f.end() ? d : it->second;
}

// The sequence of events this process issued: 'G' all-gather, 'R' all-reduce, 'L' a gather launch,
// 'M' a matmul; lower case when recorded off the main thread.
std::mutex g_mu;
std::string g_events;
bool g_recording = false;
std::thread::id g_main = std::this_thread::get_id();
at::CallbackHandle record_events() {
  return at::addGlobalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        const std::string n = fn.name();
        char e = 0;
        if (n == grpo::dist::kAllGatherLaunchRecord) e = 'L';
        else if (n.find("all_gather") != std::string::npos || n.find("allgather") != std::string::npos) e = 'G';
        else if (n.find("all_reduce") != std::string::npos || n.find("allreduce") != std::string::npos) e = 'R';
        else if (n == "aten::mm" || n == "aten::addmm" || n == "aten::bmm" || n == "aten::linear" || n == "aten::matmul") e = 'M';
        if (e && std::this_thread::get_id() != g_main) e = static_cast<char>(std::tolower(e));
        if (e) {
          std::lock_guard<std::mutex> l(g_mu);
          if (g_recording) g_events += e;
        }
        return nullptr;
      }));
}

int g_layers = 3;  // --layers

grpo::model::ModelSpec tiny_spec(bool moe) {
  grpo::model::ModelSpec s;
  s.architecture = moe ? "MixtralForCausalLM" : "LlamaForCausalLM";
  s.vocab_size = 64;
  s.hidden_size = 32;
  s.intermediate_size = 48;
  s.num_hidden_layers = g_layers;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 2;
  s.head_dim = 8;
  s.max_position_embeddings = 64;
  if (moe) {
    s.moe.num_experts = 4;
    s.moe.top_k = 2;
    s.moe.moe_intermediate_size = 16;
    s.moe.router_aux_loss_coef = 0.0;
  }
  return s;
}

// Per-token loss of a batch: mean over tokens of -log p(next token), weighted by +-1 per row (an
// advantage's sign), summed and divided by the global token count (dapo-like).
torch::Tensor batch_loss(grpo::model::Transformer& m, const torch::Tensor& ids, const torch::Tensor& w, double norm) {
  auto out = m->forward(ids);
  auto logp = torch::log_softmax(m->logits(out.hidden).narrow(1, 0, ids.size(1) - 1), -1);
  auto lp = logp.gather(-1, ids.narrow(1, 1, ids.size(1) - 1).unsqueeze(-1)).squeeze(-1);  // [b, T-1]
  return -(lp * w.unsqueeze(-1)).sum() / norm;
}

// Token log-probs of `ids` [b, T] under `m` without grad: [b, T-1] float32.
torch::Tensor token_logprobs(grpo::model::Transformer& m, const torch::Tensor& ids) {
  torch::NoGradGuard ng;
  auto out = m->forward(ids);
  auto logp = torch::log_softmax(m->logits(out.hidden).narrow(1, 0, ids.size(1) - 1), -1);
  return logp.gather(-1, ids.narrow(1, 1, ids.size(1) - 1).unsqueeze(-1)).squeeze(-1);
}

// --ref 1 (sharding full): the reference model sharded like the policy, against a replicated one.
// Bytes are counted by LibTorch's CPU allocator (tests/common/alloc_counter.h), not by the class:
//   ref_bytes       resident after building the sharded reference (outside its forwards)
//   ref_full_bytes  resident after building a replicated reference (every weight whole)
//   ref_block_bytes the decoder blocks' share of ref_full_bytes (parameters named layers.*)
//   ref_fwd_extra   the largest transient of a sharded forward above ref_bytes (gathered blocks
//                   plus activations); ref_full_fwd_extra the same for the replicated forward
//   ref_logp_diff   max |log p| difference, sharded vs replicated reference, before training
//   ref_sync_diff   after training and sync_from (ref_model_sync_steps), vs the trained policy
struct RefCheck {
  std::unique_ptr<grpo::dist::ShardedReference> sharded;
  grpo::model::Transformer replicated{nullptr};
  int64_t bytes = 0, full_bytes = 0, block_bytes = 0, fwd_extra = 0, full_fwd_extra = 0;
  double logp_diff = -1, sync_diff = -1;
};

RefCheck reference_check(const std::shared_ptr<Distributed>& d, grpo::dist::Sharder& sharder, grpo::model::Transformer& model,
                         bool moe, const torch::Tensor& ids) {
  RefCheck c;
  {
    grpo::testing::CpuAllocCounter n;
    torch::manual_seed(0);  // the policy's initial weights, as on every rank
    c.replicated = grpo::model::Transformer(tiny_spec(moe));
    for (auto& p : c.replicated->parameters()) p.set_requires_grad(false);
    c.replicated->eval();
    c.full_bytes = n.stats().live;
  }
  for (const auto& p : c.replicated->named_parameters())
    if (p.key().rfind("layers.", 0) == 0) c.block_bytes += static_cast<int64_t>(p.value().nbytes());
  {
    grpo::testing::CpuAllocCounter n;
    c.sharded = std::make_unique<grpo::dist::ShardedReference>(d, sharder, model);
    c.bytes = n.stats().live;
    n.stats().reset_peak();
    auto a = token_logprobs(c.sharded->model(), ids);
    c.fwd_extra = n.stats().peak - c.bytes;
    grpo::testing::CpuAllocCounter m;
    auto b = token_logprobs(c.replicated, ids);
    c.full_fwd_extra = m.stats().peak;
    c.logp_diff = (a - b).abs().max().item<double>();
  }
  return c;
}

int run(const std::map<std::string, std::string>& f) {
  grpo::config::DistributedConfig dc;
  dc.sharding = grpo::config::enum_from_name<grpo::config::ShardingMode>(flag(f, "mode", "full")).value();
  dc.reshard_after_forward = flag(f, "reshard", "1") == "1";
  dc.forward_prefetch = flag(f, "fprefetch", "1") == "1";
  dc.backward_prefetch = flag(f, "bprefetch", "1") == "1";
  dc.shard_bucket_cap_mb = std::stod(flag(f, "bucket-mb", "25"));
  dc.timeout_s = 60;
  g_layers = std::stoi(flag(f, "layers", "3"));
  auto d = Distributed::create(dc, "cpu");
  const int W = d->world_size(), R = d->rank();
  const int steps = std::stoi(flag(f, "steps", "3")), micro = std::stoi(flag(f, "micro", "2"));
  torch::manual_seed(0);  // the same initial weights on every rank
  grpo::model::Transformer model(tiny_spec(flag(f, "moe", "0") == "1"));
  int64_t block_numel = 0;  // elements of the decoder blocks' parameters (what sharding full gathers)
  for (const auto& p : model->named_parameters())
    if (p.key().rfind("layers.", 0) == 0) block_numel += p.value().numel();
  grpo::config::OptimizerConfig oc;
  oc.weight_decay = 0.1;
  const double lr = 1e-2, max_norm = 0.5;
  std::unique_ptr<grpo::dist::Sharder> sharder;
  std::unique_ptr<torch::optim::AdamW> opt;
  std::unique_ptr<grpo::dist::GradientReducer> reducer;
  if (dc.sharding != grpo::config::ShardingMode::NONE) {
    sharder = std::make_unique<grpo::dist::Sharder>(d, model, grpo::dist::ShardOptions::from_config(dc, oc, flag(f, "bf16", "0") == "1"));
  } else {
    std::vector<torch::Tensor> decay, rest;
    for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : rest).push_back(p);
    auto o = torch::optim::AdamWOptions(lr).weight_decay(oc.weight_decay);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(o));
    auto nd = o;
    nd.weight_decay(0.0);
    groups.emplace_back(rest, std::make_unique<torch::optim::AdamWOptions>(nd));
    opt = std::make_unique<torch::optim::AdamW>(groups, o);
    if (W > 1) reducer = std::make_unique<grpo::dist::GradientReducer>(d, model->parameters());
  }
  RefCheck ref;
  const bool check_ref = flag(f, "ref", "0") == "1";
  auto ref_ids = torch::randint(64, {4, 10}, grpo::dist::make_rank_generator(78, 0, 0), torch::kInt64);
  if (check_ref) ref = reference_check(d, *sharder, model, flag(f, "moe", "0") == "1", ref_ids);
  // The rollout copy (--generate N, last step), counted by LibTorch's CPU allocator:
  //   gen_copy_bytes   resident after the N forwards without grad minus before them (the kept copy)
  //   pre_update_bytes resident right before the optimizer step minus before the N forwards (is
  //                    the copy still there when the update starts? compare with --generate 0)
  grpo::testing::CpuAllocCounter alloc;
  int64_t gen_copy_bytes = 0, pre_update_bytes = 0;
  const bool autocast = flag(f, "autocast", "0") == "1";
  auto handle = record_events();
  constexpr int64_t kGlobal = 12, kT = 10;
  GRPO_REQUIRE(kGlobal % (W * micro) == 0, "12 rows must split into ranks x micro-batches");
  for (int step = 0; step < steps; ++step) {
    auto g = grpo::dist::make_rank_generator(77, 0, step);
    auto ids = torch::randint(64, {kGlobal, kT}, g, torch::kInt64);
    auto w = torch::randn({kGlobal}, g, torch::kFloat32).sign();
    const int64_t local = kGlobal / W, mb = local / micro;
    {
      std::lock_guard<std::mutex> l(g_mu);
      g_recording = true;
    }
    // Gloo's threads drop their references to finished collectives' buffers a moment after the
    // collective completes: let them, so that the counts below see only what the trainer holds.
    // Sharded modes only: under DDP the reducer's bucket all-reduces may still be queued, and a
    // barrier issued among them would not be in the same order on every rank.
    auto settle = [&] {
      if (sharder) {
        d->barrier();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return alloc.stats().global_live();
    };
    const int64_t live0 = settle();
    {
      // --generate N: N forwards without grad first, as a rollout's decode steps are (under CPU
      // bf16 autocast with --autocast 1, as the rollout under trainer.bf16).
      torch::NoGradGuard ng;
      grpo::model::Bf16Autocast ac(autocast, torch::Device(torch::kCPU));
      for (int g = 0; g < std::stoi(flag(f, "generate", "0")); ++g) model->forward(ids.narrow(0, 0, 2));
    }
    gen_copy_bytes = settle() - live0;
    for (int k = 0; k < micro; ++k) {
      if (reducer) reducer->set_sync(k + 1 == micro);
      // Sum over the global batch divided by the global token count, times W: the mean over ranks
      // (what the reducer and the sharder take) of per-rank sums is then the global mean.
      batch_loss(model, ids.narrow(0, R * local + k * mb, mb), w.narrow(0, R * local + k * mb, mb),
                 double(kGlobal * (kT - 1)) / W)
          .backward();
    }
    pre_update_bytes = settle() - live0;
    if (sharder) {
      sharder->step(lr, max_norm);
    } else {
      if (reducer) reducer->synchronize();
      torch::nn::utils::clip_grad_norm_(model->parameters(), max_norm);
      opt->step();
      opt->zero_grad();
    }
    std::lock_guard<std::mutex> l(g_mu);
    g_recording = false;
    g_events += '|';
  }
  at::removeCallback(handle);
  const std::string out = flag(f, "out", "");
  int ckpt_equal = -1;
  if (sharder && flag(f, "ckpt", "0") == "1") {
    // Round trip of the checkpoint pieces: every rank's slices written into one whole tensor per
    // key (zeros elsewhere), summed over ranks, then read back into a differently initialised
    // model's sharder; the two must then hold the same slices.
    torch::manual_seed(1);
    grpo::model::Transformer other(tiny_spec(flag(f, "moe", "0") == "1"));
    auto mine = sharder->local_shards();
    // Every key on every rank (the same collectives everywhere), shapes from the whole new model.
    std::map<std::string, torch::Tensor> whole;
    for (const auto& p : other->named_parameters())
      for (const std::string prefix : {"", "exp_avg/", "exp_avg_sq/"}) whole[prefix + p.key()] = torch::zeros({p.value().numel()});
    for (const auto* v : {&mine.weights, &mine.optimizer})
      for (const auto& p : *v) whole.at(p.key).narrow(0, p.begin, p.end - p.begin).copy_(p.data);
    for (auto& kv : whole) d->all_reduce(kv.second, grpo::dist::ReduceOp::SUM);
    grpo::dist::Sharder loaded(d, other, grpo::dist::ShardOptions::from_config(dc, oc, false));
    loaded.load_shards([&](const std::string& key, int64_t begin, torch::Tensor dst) {
      dst.copy_(whole.at(key).narrow(0, begin, dst.numel()));
    }, [&](const std::string& name) { return mine.optimizer_step.at(name); });
    auto back = loaded.local_shards();
    ckpt_equal = back.weights.size() == mine.weights.size() && back.optimizer.size() == mine.optimizer.size();
    for (size_t i = 0; ckpt_equal && i < mine.weights.size(); ++i)
      ckpt_equal = torch::equal(back.weights[i].data, mine.weights[i].data);
    for (size_t i = 0; ckpt_equal && i < mine.optimizer.size(); ++i)
      ckpt_equal = torch::equal(back.optimizer[i].data, mine.optimizer[i].data);
  }
  if (check_ref) {
    ref.sharded->sync_from(*sharder, model);
    ref.sync_diff = (token_logprobs(ref.sharded->model(), ref_ids) - token_logprobs(model, ref_ids)).abs().max().item<double>();
  }
  int64_t peak = sharder ? sharder->peak_held_bytes() : 0;
  if (sharder) sharder->gather_full();
  if (R == 0) {
    std::ofstream o(out + ".weights.txt");
    for (const auto& p : model->parameters()) {
      auto flat = p.detach().to(torch::kFloat64).reshape(-1);
      auto* a = flat.data_ptr<double>();
      for (int64_t i = 0; i < flat.numel(); ++i) o << std::setprecision(17) << a[i] << "\n";
    }
  }
  std::string ev;
  {
    std::lock_guard<std::mutex> l(g_mu);
    ev = g_events;
  }
  int gathers = 0, reduces = 0, launches = 0, gg = 0;
  // Gloo records a collective on its worker thread when it runs (lower case here), racing the main
  // thread's matmuls; the launches and matmuls of the main thread are in program order, so two
  // launches with no matmul between them (other threads' events skipped) are a prefetch, always.
  char last_main = 0;
  for (char c : ev) {
    const char u = static_cast<char>(std::toupper(c));
    gathers += u == 'G', reduces += u == 'R', launches += c == 'L';
    if (c == '|') last_main = 0;  // a new step
    if (c != 'L' && c != 'M') continue;
    if (c == 'L' && last_main == 'L') ++gg;
    last_main = c;
  }
  std::ofstream o(out + ".rank-" + std::to_string(R) + ".txt");
  o << "world " << W << "\ngathers " << gathers << "\nallreduces " << reduces << "\nlaunches " << launches << "\ngg_pairs " << gg << "\npeak_bytes " << peak
    << "\nunits " << (sharder ? sharder->num_units() : 0) << "\nckpt_equal " << ckpt_equal;
  if (check_ref)
    o << std::setprecision(17) << "\nref_bytes " << ref.bytes << "\nref_full_bytes " << ref.full_bytes << "\nref_block_bytes "
      << ref.block_bytes << "\nref_fwd_extra " << ref.fwd_extra << "\nref_full_fwd_extra " << ref.full_fwd_extra
      << "\nref_logp_diff " << ref.logp_diff << "\nref_sync_diff " << ref.sync_diff;
  o << "\nblock_numel " << block_numel << "\ngen_copy_bytes " << gen_copy_bytes << "\npre_update_bytes " << pre_update_bytes;
  o << "\nevents " << ev << "\n";
  d->barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_flags(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "shard_worker: " << e.what() << "\n";
    return 1;
  }
}
