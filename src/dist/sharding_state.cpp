// The Sharder's state as pieces of global tensors (checkpoints), and the bytes it holds (bench).
#include <algorithm>
#include <set>

#include "grpo/dist/sharding.h"
#include "grpo/util/error.h"
#include "shard_unit.h"

namespace grpo::dist {

namespace {
// The part of entry [offset, offset + numel) of a unit that falls in this rank's [begin, begin + S).
struct Overlap {
  int64_t lo = 0, hi = 0;
  bool empty() const { return hi <= lo; }
};
Overlap overlap(int64_t offset, int64_t numel, int64_t begin, int64_t S) {
  return {std::max(offset, begin), std::min(offset + numel, begin + S)};
}
}  // namespace

LocalShards Sharder::local_shards() const {
  LocalShards out;
  for (const auto& up : units_) {
    const auto& u = *up;
    for (const auto& e : u.entries) {
      auto ov = overlap(e.offset, e.numel, u.begin, u.shard_numel);
      out.optimizer_step[e.name] = u.step;
      if (ov.empty()) continue;
      auto piece = [&](const std::string& key, const torch::Tensor& flat) {
        return ShardPiece{key, e.shape, ov.lo - e.offset, ov.hi - e.offset,
                          flat.detach().narrow(0, ov.lo - u.begin, ov.hi - ov.lo)};
      };
      out.weights.push_back(piece(e.name, u.shard));
      if (u.exp_avg.defined()) {
        out.optimizer.push_back(piece("exp_avg/" + e.name, u.exp_avg));
        out.optimizer.push_back(piece("exp_avg_sq/" + e.name, u.exp_avg_sq));
      }
    }
  }
  return out;
}

void Sharder::load_shards(const std::function<void(const std::string&, int64_t, torch::Tensor)>& read_into,
                          const std::function<int64_t(const std::string&)>& step) {
  torch::NoGradGuard ng;
  for (auto& up : units_) {
    auto& u = *up;
    const int64_t st = u.entries.empty() ? 0 : step(u.entries.front().name);
    for (const auto& e : u.entries)
      GRPO_REQUIRE(step(e.name) == st, "checkpoint: AdamW step of ", e.name, " is ", step(e.name), ", of ",
                   u.entries.front().name, " ", st, "; a sharded unit steps all its parameters together");
    u.step = st;
    if (st > 0) {
      u.exp_avg = torch::zeros_like(u.shard.detach());
      u.exp_avg_sq = torch::zeros_like(u.shard.detach());
    } else {
      u.exp_avg = u.exp_avg_sq = torch::Tensor();
    }
    for (const auto& e : u.entries) {
      auto ov = overlap(e.offset, e.numel, u.begin, u.shard_numel);
      if (ov.empty()) continue;
      read_into(e.name, ov.lo - e.offset, u.shard.detach().narrow(0, ov.lo - u.begin, ov.hi - ov.lo));
      if (st > 0) {
        // The moments' keys of train/shard_io.h (exp_avg_key, exp_avg_sq_key).
        read_into("exp_avg/" + e.name, ov.lo - e.offset, u.exp_avg.narrow(0, ov.lo - u.begin, ov.hi - ov.lo));
        read_into("exp_avg_sq/" + e.name, ov.lo - e.offset, u.exp_avg_sq.narrow(0, ov.lo - u.begin, ov.hi - ov.lo));
      }
    }
  }
  for (int k = 0; k < num_units(); ++k) {
    auto& u = *units_[static_cast<size_t>(k)];
    if (!u.block) gather_into_params(u);
    else if (u.whole) u.whole = false, materialize(k);  // pinned: refresh the whole copy
  }
}

int64_t Sharder::held_bytes() const {
  // Each storage once: parameters viewing a gathered buffer count as that buffer.
  std::set<const void*> seen;
  int64_t bytes = 0;
  auto add = [&](const torch::Tensor& t) {
    if (!t.defined() || !t.has_storage()) return;
    const void* key = t.storage().unsafeGetStorageImpl();
    if (seen.insert(key).second) bytes += static_cast<int64_t>(t.storage().nbytes());
  };
  for (const auto& p : model_->parameters()) {
    add(p);
    add(p.grad());
  }
  for (const auto& u : units_) {
    for (const auto& t : {u->shard, u->shard.grad(), u->grad, u->exp_avg, u->exp_avg_sq, u->send, u->gather_buf, u->gathered})
      add(t);
  }
  return bytes;
}

void Sharder::sample_peak(int64_t extra) { peak_bytes_ = std::max(peak_bytes_, held_bytes() + extra); }

std::string Sharder::describe() const {
  int64_t numel = 0, padded = 0;
  for (const auto& u : units_) numel += u->numel, padded += u->padded;
  return str("sharding ", config::enum_name(opts_.mode), ": ", units_.size(), " flat unit(s) (", num_block_units(),
             " decoder blocks) over ", world_, " rank(s), ", numel, " parameters (", padded - numel,
             " padding); this rank owns ", padded / std::max(world_, 1), " elements of AdamW state",
             opts_.mode == config::ShardingMode::FULL
                 ? str("; blocks gathered around forward and backward (reshard_after_forward=", opts_.reshard_after_forward,
                       ", forward_prefetch=", opts_.forward_prefetch, ", backward_prefetch=", opts_.backward_prefetch,
                       ", all-gather in ", opts_.bf16_gather ? "bf16" : "float32", ")")
                 : std::string());
}

}  // namespace grpo::dist
