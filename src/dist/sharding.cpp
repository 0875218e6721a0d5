#include "grpo/dist/sharding.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <ATen/record_function.h>

#include "grpo/model/lora.h"
#include "grpo/util/error.h"
#include "shard_unit.h"
#include "sharded_block.h"

namespace grpo::dist {

ShardOptions ShardOptions::from_config(const config::DistributedConfig& d, const config::OptimizerConfig& o, bool bf16) {
  ShardOptions s;
  s.mode = d.sharding;
  s.reshard_after_forward = d.reshard_after_forward;
  s.forward_prefetch = d.forward_prefetch;
  s.backward_prefetch = d.backward_prefetch;
  s.bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(std::llround(d.shard_bucket_cap_mb * double(1 << 20))));
  s.bf16_gather = bf16 && d.sharding == config::ShardingMode::FULL;
  s.beta1 = o.adam_beta1, s.beta2 = o.adam_beta2, s.eps = o.adam_epsilon, s.weight_decay = o.weight_decay;
  return s;
}

void reduce_scatter_flat(Distributed& d, torch::Tensor& in, torch::Tensor& out) {
  const int64_t S = in.numel() / d.world_size();
  if (d.has_group()) {
    std::vector<at::Tensor> v{in};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(d.timeout_s() * 1000));
    d.wait(d.c10d_backend()->allreduce(v, o), "sharded gradient reduce-scatter (all_reduce)");
  }
  out.copy_(in.narrow(0, static_cast<int64_t>(d.rank()) * S, S));
}

c10::intrusive_ptr<c10d::Work> all_gather_flat(Distributed& d, const torch::Tensor& shard, torch::Tensor& out) {
  // A profiler range on the calling thread at the launch (like FSDP's "FSDP::all_gather"): c10d's
  // own "gloo:all_gather" record fires on Gloo's worker thread when the collective runs, so only
  // this one places a prefetched gather's launch among the caller's matmuls in a trace.
  RECORD_FUNCTION(kAllGatherLaunchRecord, std::vector<c10::IValue>{});
  if (!d.has_group()) {
    out.copy_(shard);
    return {};
  }
  const int64_t S = shard.numel();
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < d.world_size(); ++r) outs[0].push_back(out.narrow(0, r * S, S));
  std::vector<at::Tensor> in{shard};
  c10d::AllgatherOptions o;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(d.timeout_s() * 1000));
  return d.c10d_backend()->allgather(outs, in, o);
}

Sharder::Sharder(std::shared_ptr<Distributed> dist, model::Transformer model, ShardOptions opts)
    : dist_(std::move(dist)), model_(std::move(model)), opts_(opts) {
  GRPO_CHECK(dist_ != nullptr);
  GRPO_CHECK(opts_.mode != config::ShardingMode::NONE, "Sharder built for sharding none");
  GRPO_REQUIRE(!(opts_.mode == config::ShardingMode::FULL && model::has_lora(*model_)),
               "distributed.sharding: full does not shard a LoRA model (its frozen base stays whole on every rank); "
               "use sharding: optimizer or none with LoRA");
  world_ = dist_->world_size(), rank_ = dist_->rank();
  build_units();
  if (num_block_units() > 0) {
    model_->set_block_runner(make_sharded_block_runner(this));
    for (int u = 0; u < num_units(); ++u)
      if (units_[u]->block) units_[u]->whole = true, release(u);
  }
  sample_peak();
}

Sharder::~Sharder() {
  model_->set_block_runner(nullptr);
  for (auto& u : units_)
    if (u->pending) {
      try {
        u->pending->wait();
      } catch (const std::exception&) {
      }
    }
}

int Sharder::num_block_units() const {
  return static_cast<int>(std::count_if(units_.begin(), units_.end(), [](const auto& u) { return u->block; }));
}

void Sharder::build_units() {
  const bool full = opts_.mode == config::ShardingMode::FULL;
  const int64_t nlayers = static_cast<int64_t>(model_->layers->size());
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> per_layer(static_cast<size_t>(nlayers));
  std::vector<std::pair<std::string, torch::Tensor>> rest;
  for (const auto& p : model_->named_parameters(/*recurse=*/true)) {
    if (!p.value().requires_grad()) continue;
    // float64 masters are for the parity tests (reduction-order rounding at 1e-16 instead of 1e-7).
    GRPO_REQUIRE(p.value().scalar_type() == torch::kFloat32 || p.value().scalar_type() == torch::kFloat64,
                 "distributed.sharding: parameter ", p.key(), " is ", p.value().scalar_type(),
                 "; sharded training keeps float32 masters (model.dtype float32, or float64 for tests)");
    int64_t layer = -1;
    if (full && p.key().rfind("layers.", 0) == 0) layer = std::stoll(p.key().substr(7, p.key().find('.', 7) - 7));
    if (layer >= 0) per_layer[static_cast<size_t>(layer)].emplace_back(p.key(), p.value());
    else rest.emplace_back(p.key(), p.value());
  }
  auto add_unit = [&](const std::vector<std::pair<std::string, torch::Tensor>>& ps, bool block) {
    auto u = std::make_unique<Unit>();
    u->block = block;
    for (const auto& [name, t] : ps) {
      Unit::Entry e{name, t, t.sizes().vec(), u->numel, t.numel(), t.dim() >= 2};
      u->numel += t.numel();
      u->entries.push_back(std::move(e));
    }
    u->shard_numel = (u->numel + world_ - 1) / world_;
    u->padded = u->shard_numel * world_;
    u->begin = static_cast<int64_t>(rank_) * u->shard_numel;
    torch::NoGradGuard ng;
    auto flat = torch::zeros({u->padded}, ps.front().second.options().requires_grad(false));
    for (const auto& e : u->entries) flat.narrow(0, e.offset, e.numel).copy_(e.param.detach().reshape(-1));
    u->shard = flat.narrow(0, u->begin, u->shard_numel).clone();
    if (block) u->shard.requires_grad_(true);
    units_.push_back(std::move(u));
  };
  // The rest (all of them with `optimizer`) in units of about bucket_bytes, in parameter order.
  std::vector<std::pair<std::string, torch::Tensor>> bucket;
  int64_t bytes = 0;
  for (const auto& p : rest) {
    if (!bucket.empty() && bytes + static_cast<int64_t>(p.second.nbytes()) > opts_.bucket_bytes) {
      add_unit(bucket, false);
      bucket.clear(), bytes = 0;
    }
    bucket.push_back(p), bytes += static_cast<int64_t>(p.second.nbytes());
  }
  if (!bucket.empty()) add_unit(bucket, false);
  layer_unit_.assign(static_cast<size_t>(nlayers), -1);
  for (int64_t l = 0; l < nlayers; ++l) {
    if (per_layer[static_cast<size_t>(l)].empty()) continue;
    layer_unit_[static_cast<size_t>(l)] = static_cast<int>(units_.size());
    add_unit(per_layer[static_cast<size_t>(l)], true);
  }
}

torch::Tensor Sharder::block_shard(int unit) const { return units_[static_cast<size_t>(unit)]->shard; }

std::vector<torch::Tensor> Sharder::unit_params(int unit) const {
  std::vector<torch::Tensor> out;
  for (const auto& e : units_[static_cast<size_t>(unit)]->entries) out.push_back(e.param);
  return out;
}

void Sharder::prefetch(int unit) {
  auto& u = *units_[static_cast<size_t>(unit)];
  if (u.whole || u.pending || u.gather_buf.defined()) return;
  torch::NoGradGuard ng;
  const auto dtype = opts_.bf16_gather ? torch::kBFloat16 : u.shard.scalar_type();
  u.send = u.shard.detach().to(dtype);  // bf16: a copy; otherwise the master itself
  u.gather_buf = torch::empty({u.padded}, u.send.options());
  u.pending = all_gather_flat(*dist_, u.send, u.gather_buf);
  ++traffic_.all_gathers;
}

bool Sharder::is_whole(int unit) const { return units_[static_cast<size_t>(unit)]->whole; }

bool Sharder::is_low_precision(int unit) const { return units_[static_cast<size_t>(unit)]->low_precision; }

void Sharder::materialize(int unit, bool low_precision) {
  auto& u = *units_[static_cast<size_t>(unit)];
  if (u.whole) return;
  if (!u.gather_buf.defined()) prefetch(unit);
  else ++traffic_.prefetched;  // launched ahead by the previous block's forward or backward
  if (u.pending) dist_->wait(u.pending, "sharded parameter all_gather");
  u.pending.reset();
  torch::NoGradGuard ng;
  // bf16 all-gather: half the bytes on the wire; the block computes on the float32 upcast of the
  // bf16-rounded weights (under autocast its products run in bf16 anyway).
  const auto master = u.shard.scalar_type();
  u.low_precision = low_precision && u.gather_buf.scalar_type() == torch::kBFloat16;
  u.gathered = u.gather_buf.scalar_type() == master || u.low_precision ? u.gather_buf : u.gather_buf.to(master);
  u.send = torch::Tensor();
  u.gather_buf = torch::Tensor();
  for (auto& e : u.entries) {
    e.param.set_data(u.gathered.narrow(0, e.offset, e.numel).view(e.shape));
    // New values under the same TensorImpl: caches keyed by the tensor and its version counter
    // (the rollout's packed weights, autocast's casts) must see a change.
    e.param.unsafeGetTensorImpl()->bump_version();
  }
  u.whole = true;
  sample_peak();
}

void Sharder::release(int unit) {
  auto& u = *units_[static_cast<size_t>(unit)];
  if (pinned_ || !u.whole || !u.block) return;
  torch::NoGradGuard ng;
  for (auto& e : u.entries) e.param.set_data(torch::empty({0}, e.param.options().dtype(u.shard.scalar_type())));
  u.gathered = torch::Tensor();
  u.whole = false;
  u.low_precision = false;
}

torch::Tensor Sharder::reduce_scatter_block(int unit, std::vector<torch::Tensor> grads) {
  auto& u = *units_[static_cast<size_t>(unit)];
  GRPO_CHECK(grads.size() == u.entries.size());
  torch::NoGradGuard ng;
  auto flat = torch::zeros({u.padded}, u.shard.options().requires_grad(false));
  int64_t extra = 0;
  for (const auto& g : grads) extra += g.defined() ? static_cast<int64_t>(g.nbytes()) : 0;
  sample_peak(extra + static_cast<int64_t>(flat.nbytes()));
  for (size_t k = 0; k < grads.size(); ++k) {
    if (grads[k].defined()) flat.narrow(0, u.entries[k].offset, u.entries[k].numel).copy_(grads[k].reshape(-1));
    grads[k] = torch::Tensor();  // freed as soon as it is in the flat buffer
  }
  auto out = torch::empty({u.shard_numel}, flat.options());
  reduce_scatter_flat(*dist_, flat, out);
  ++traffic_.reduce_scatters;
  return out;
}

void Sharder::gather_into_params(Unit& u) {
  torch::NoGradGuard ng;
  auto buf = torch::empty({u.padded}, u.shard.options().requires_grad(false));
  auto work = all_gather_flat(*dist_, u.shard.detach(), buf);
  ++traffic_.all_gathers;
  if (work) dist_->wait(work, "sharded parameter all_gather");
  for (auto& e : u.entries) e.param.detach().copy_(buf.narrow(0, e.offset, e.numel).view(e.shape));
}

void Sharder::step_unit(Unit& u, double lr) {
  torch::NoGradGuard ng;
  auto p = u.shard.detach();  // shares the master's storage
  const auto& g = u.grad;
  if (!u.exp_avg.defined()) u.exp_avg = torch::zeros_like(p), u.exp_avg_sq = torch::zeros_like(p);
  ++u.step;
  const double bc1 = 1 - std::pow(opts_.beta1, static_cast<double>(u.step));
  const double bc2 = 1 - std::pow(opts_.beta2, static_cast<double>(u.step));
  // torch::optim::AdamW's update, on this rank's slice; decoupled decay on matrix elements only.
  if (opts_.weight_decay != 0) {
    for (const auto& e : u.entries) {
      const int64_t lo = std::max(e.offset, u.begin), hi = std::min(e.offset + e.numel, u.begin + u.shard_numel);
      if (e.decay && hi > lo) p.narrow(0, lo - u.begin, hi - lo).mul_(1 - lr * opts_.weight_decay);
    }
  }
  u.exp_avg.mul_(opts_.beta1).add_(g, 1 - opts_.beta1);
  u.exp_avg_sq.mul_(opts_.beta2).addcmul_(g, g, 1 - opts_.beta2);
  auto denom = (u.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(opts_.eps);
  p.addcdiv_(u.exp_avg, denom, -lr / bc1);
}

void Sharder::release_inference() {
  for (int u : inference_kept_) release(u);
  inference_kept_.clear();
}

double Sharder::step(double lr, double max_grad_norm) {
  sample_peak();
  release_inference();  // the rollout's whole copy is gone before the update
  double sumsq = 0;
  {
    torch::NoGradGuard ng;
    for (auto& up : units_) {
      auto& u = *up;
      if (u.block) {
        auto g = u.shard.grad();
        u.grad = g.defined() ? g.detach().clone() : torch::zeros_like(u.shard.detach());
      } else {
        auto flat = torch::zeros({u.padded}, u.shard.options().requires_grad(false));
        for (auto& e : u.entries) {
          if (e.param.grad().defined()) flat.narrow(0, e.offset, e.numel).copy_(e.param.grad().reshape(-1));
          e.param.mutable_grad() = torch::Tensor();  // the full gradient is not kept past its reduce-scatter
        }
        u.grad = torch::empty({u.shard_numel}, flat.options());
        reduce_scatter_flat(*dist_, flat, u.grad);
        ++traffic_.reduce_scatters;
      }
      u.grad.div_(world_);
      sumsq += u.grad.to(torch::kFloat64).pow(2).sum().item<double>();
    }
  }
  // The global norm: every element of the padded flat space is owned by exactly one rank.
  const double norm = std::sqrt(world_ > 1 ? dist_->all_reduce(sumsq, ReduceOp::SUM) : sumsq);
  if (std::isfinite(norm)) {
    const double coef = max_grad_norm > 0 ? max_grad_norm / (norm + 1e-6) : 1.0;
    for (auto& u : units_) {
      if (coef < 1.0) u->grad.mul_(coef);
      step_unit(*u, lr);
    }
    for (auto& u : units_)
      if (!u->block) gather_into_params(*u);
      else if (u->whole) {  // pinned or kept: refresh the whole copy from the new masters
        u->whole = false;
        materialize(static_cast<int>(&u - &units_[0]));
      }
  }
  zero_grad();
  return norm;
}

void Sharder::zero_grad() {
  for (auto& u : units_) {
    u->grad = torch::Tensor();
    if (u->shard.grad().defined()) u->shard.mutable_grad() = torch::Tensor();
    for (auto& e : u->entries) e.param.mutable_grad() = torch::Tensor();
  }
}

void Sharder::gather_full() {
  release_inference();  // a bf16 rollout copy is not what a caller of gather_full wants (saving, copying)
  pinned_ = true;
  for (int u = 0; u < num_units(); ++u)
    if (units_[static_cast<size_t>(u)]->block) prefetch(u);
  for (int u = 0; u < num_units(); ++u)
    if (units_[static_cast<size_t>(u)]->block) materialize(u);
}

void Sharder::release_full() {
  pinned_ = false;
  inference_kept_.clear();
  for (int u = 0; u < num_units(); ++u) release(u);
}

}  // namespace grpo::dist
