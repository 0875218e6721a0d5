// The reference model under sharding full: block slices laid out as the policy's block units,
// gathered one block at a time in its (no-grad) forwards. See grpo/dist/sharded_reference.h.
#include "grpo/dist/sharded_reference.h"

#include <map>
#include <set>
#include <string>

#include "grpo/util/error.h"
#include "shard_unit.h"

namespace grpo::dist {

// One decoder block of the reference: the policy unit's layout, this rank's slice of it.
struct ShardedReference::Block {
  std::vector<Sharder::Unit::Entry> entries;  // the reference's own parameters, same offsets as the policy's
  int64_t padded = 0;
  torch::Tensor shard;       // [S] this rank's slice, masters' dtype
  torch::Tensor gather_buf;  // [padded] while gathered or being gathered
  c10::intrusive_ptr<c10d::Work> pending;
  bool whole = false;
};

ShardedReference::ShardedReference(std::shared_ptr<Distributed> dist, const Sharder& sharder,
                                   model::Transformer& policy_model)
    : dist_(std::move(dist)) {
  GRPO_CHECK(dist_ != nullptr && sharder.num_block_units() > 0, "ShardedReference needs sharding full");
  prefetch_ = sharder.options().forward_prefetch;
  // Built on the CPU: the whole initial copy never reaches the device.
  model_ = model::Transformer(policy_model->spec());
  std::map<std::string, torch::Tensor> mine;
  for (const auto& p : model_->named_parameters(/*recurse=*/true)) mine.emplace(p.key(), p.value());
  const size_t nlayers = model_->layers->size();
  blocks_.resize(nlayers);
  torch::NoGradGuard ng;
  for (size_t l = 0; l < nlayers; ++l) {
    const int u = sharder.block_unit(l);
    if (u < 0) continue;
    const auto& pu = sharder.unit(u);
    auto b = std::make_unique<Block>();
    b->padded = pu.padded;
    for (const auto& e : pu.entries) {
      auto it = mine.find(e.name);
      GRPO_CHECK(it != mine.end(), "reference model has no parameter ", e.name);
      Sharder::Unit::Entry re = e;
      re.param = it->second;
      re.param.set_data(torch::empty({0}, re.param.options()));  // frees the CPU initial values
      b->entries.push_back(std::move(re));
    }
    b->shard = pu.shard.detach().clone();  // the policy's slice, on its device, in its dtype
    blocks_[l] = std::move(b);
  }
  model_->to(policy_model->device(), policy_model->dtype());
  // to() may have replaced the emptied storages: re-bind each entry to the module's tensor.
  mine.clear();
  for (const auto& p : model_->named_parameters(/*recurse=*/true)) mine.emplace(p.key(), p.value());
  for (auto& b : blocks_)
    if (b)
      for (auto& e : b->entries) e.param = mine.at(e.name);
  copy_rest(policy_model);
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
  model_->eval();
  model_->set_block_runner([this](size_t layer, model::BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                  const torch::Tensor& sin, const torch::Tensor& mask, model::KVCache* cache,
                                  const torch::Tensor& valid) -> std::pair<torch::Tensor, std::optional<model::MoeStats>> {
    Block* b = layer < blocks_.size() ? blocks_[layer].get() : nullptr;
    if (!b) return block.forward(x, cos, sin, mask, cache, valid);
    GRPO_CHECK(!torch::GradMode::is_enabled(), "the sharded reference model runs forwards without grad only");
    materialize(*b);
    if (prefetch_)
      for (size_t n = layer + 1; n < blocks_.size(); ++n)
        if (blocks_[n]) {
          prefetch(*blocks_[n]);
          break;
        }
    auto out = block.forward(x, cos, sin, mask, cache, valid);
    release(*b);
    return out;
  });
  peak_bytes_ = held_bytes();
}

ShardedReference::~ShardedReference() {
  if (model_) model_->set_block_runner(nullptr);
  for (auto& b : blocks_)
    if (b && b->pending) {
      try {
        b->pending->wait();
      } catch (const std::exception&) {
      }
    }
}

void ShardedReference::copy_rest(model::Transformer& policy_model) {
  torch::NoGradGuard ng;
  std::set<std::string> sharded;
  for (const auto& b : blocks_)
    if (b)
      for (const auto& e : b->entries) sharded.insert(e.name);
  std::map<std::string, torch::Tensor> src;
  for (const auto& p : policy_model->named_parameters(/*recurse=*/true)) src.emplace(p.key(), p.value());
  for (const auto& p : policy_model->named_buffers(/*recurse=*/true)) src.emplace(p.key(), p.value());
  for (const auto& p : model_->named_parameters(/*recurse=*/true))
    if (!sharded.count(p.key())) p.value().copy_(src.at(p.key()));
  for (const auto& p : model_->named_buffers(/*recurse=*/true)) p.value().copy_(src.at(p.key()));
}

void ShardedReference::sync_from(const Sharder& sharder, model::Transformer& policy_model) {
  torch::NoGradGuard ng;
  for (size_t l = 0; l < blocks_.size(); ++l)
    if (blocks_[l]) blocks_[l]->shard.copy_(sharder.unit(sharder.block_unit(l)).shard.detach());
  copy_rest(policy_model);
}

void ShardedReference::prefetch(Block& b) {
  if (b.whole || b.pending || b.gather_buf.defined()) return;
  b.gather_buf = torch::empty({b.padded}, b.shard.options());
  b.pending = all_gather_flat(*dist_, b.shard, b.gather_buf);
  ++gathers_;
}

void ShardedReference::materialize(Block& b) {
  if (b.whole) return;
  prefetch(b);
  if (b.pending) dist_->wait(b.pending, "reference model all_gather");
  b.pending.reset();
  for (auto& e : b.entries) {
    e.param.set_data(b.gather_buf.narrow(0, e.offset, e.numel).view(e.shape));
    e.param.unsafeGetTensorImpl()->bump_version();  // caches keyed by tensor and version see new values
  }
  b.whole = true;
  peak_bytes_ = std::max(peak_bytes_, held_bytes());
}

void ShardedReference::release(Block& b) {
  for (auto& e : b.entries) e.param.set_data(torch::empty({0}, e.param.options()));
  b.gather_buf = torch::Tensor();
  b.whole = false;
}

int64_t ShardedReference::held_bytes() const {
  std::set<const void*> seen;
  int64_t bytes = 0;
  auto add = [&](const torch::Tensor& t) {
    if (!t.defined() || !t.has_storage()) return;
    if (seen.insert(t.storage().unsafeGetStorageImpl()).second) bytes += static_cast<int64_t>(t.storage().nbytes());
  };
  for (const auto& p : model_->parameters()) add(p);
  for (const auto& p : model_->buffers()) add(p);
  for (const auto& b : blocks_)
    if (b) add(b->shard), add(b->gather_buf);
  return bytes;
}

}  // namespace grpo::dist
