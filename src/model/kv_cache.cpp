#include "grpo/model/kv_cache.h"

#include "grpo/util/error.h"

namespace grpo::model {

namespace {

// cache.scatter_(2, slots, x in the cache's dtype). Why the int16 view for bf16/fp16: LibTorch's CPU
// scatter_ on a reduced-precision tensor copies the WHOLE destination to a float32 buffer and back
// (create_acc_buffer), so each decode step paid O(cache capacity) per layer: 59 ms per k or v write at
// batch 64, capacity 1024 on the dev machine, vs 0.03 ms. A scatter of the same 16-bit patterns as
// int16 moves the same bits (a copy does no arithmetic), without the buffer.
void scatter_rows(torch::Tensor& cache, const torch::Tensor& slots, const torch::Tensor& x) {
  auto src = x.to(cache.scalar_type());
  if (cache.element_size() == 2 && cache.is_floating_point())
    cache.view(torch::kInt16).scatter_(2, slots, src.view(torch::kInt16));
  else
    cache.scatter_(2, slots, src);
}

}  // namespace

KVCache::KVCache(const ModelSpec& spec, int64_t batch, int64_t capacity, torch::Dtype dtype, torch::Device device)
    : capacity_(capacity) {
  GRPO_REQUIRE(batch >= 0 && capacity > 0, "KVCache: batch ", batch, " and capacity ", capacity,
               " must be >= 0 and > 0");
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  for (int i = 0; i < spec.num_hidden_layers; ++i) {
    k_.push_back(torch::zeros({batch, spec.num_key_value_heads, capacity, spec.head_dim}, opts));
    v_.push_back(torch::zeros({batch, spec.num_key_value_heads, capacity, spec.head_dim}, opts));
  }
  lengths_ = torch::zeros({batch}, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

void KVCache::select_rows(const torch::Tensor& index) {
  auto idx = index.to(lengths_.device(), torch::kInt64);
  for (auto& t : k_) t = t.index_select(0, idx);
  for (auto& t : v_) t = t.index_select(0, idx);
  lengths_ = lengths_.index_select(0, idx);
  max_len_ = lengths_.numel() ? lengths_.max().item<int64_t>() : 0;
}

void KVCache::copy_row(int64_t dst_row, const KVCache& src, int64_t src_row) {
  GRPO_CHECK(src.k_.size() == k_.size() && src.capacity_ == capacity_, "caches of different shapes");
  GRPO_CHECK(dst_row >= 0 && dst_row < batch() && src_row >= 0 && src_row < src.batch(), "row out of range");
  for (size_t l = 0; l < k_.size(); ++l) {
    GRPO_CHECK(src.k_[l].sizes().slice(1).equals(k_[l].sizes().slice(1)), "caches of different shapes");
    k_[l][dst_row].copy_(src.k_[l][src_row]);
    v_[l][dst_row].copy_(src.v_[l][src_row]);
  }
  lengths_[dst_row].copy_(src.lengths_[src_row]);
  max_len_ = lengths_.max().item<int64_t>();
}

std::pair<torch::Tensor, torch::Tensor> KVCache::write(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  GRPO_CHECK(layer >= 0 && layer < num_layers(), "layer ", layer);
  GRPO_CHECK(k.size(0) == batch(), "cache batch ", batch(), " but step batch ", k.size(0));
  const int64_t T = k.size(2);
  const int64_t S = max_len_ + T;
  GRPO_REQUIRE(S <= capacity_, "KVCache: ", S, " tokens exceed the cache capacity ", capacity_);
  // slot[b, t] = lengths[b] + t, broadcast over heads and head_dim for scatter along dim 2.
  auto slots = (lengths_.view({-1, 1}) + torch::arange(T, lengths_.options())).view({k.size(0), 1, T, 1});
  slots = slots.expand({k.size(0), k.size(1), T, k.size(3)});
  scatter_rows(k_[layer], slots, k);
  scatter_rows(v_[layer], slots, v);
  return {k_[layer].narrow(2, 0, S), v_[layer].narrow(2, 0, S)};
}

void KVCache::advance(const torch::Tensor& added) {
  lengths_ = lengths_ + added.to(lengths_.device(), torch::kInt64);
  max_len_ = lengths_.numel() ? lengths_.max().item<int64_t>() : 0;
}

}  // namespace grpo::model
