#pragma once
// Key/value cache for incremental decoding. One preallocated K and V buffer per layer,
// [batch, n_kv_heads, capacity, head_dim], plus the number of filled slots per row.
//
// Layout rule: row b's tokens occupy slots 0 .. lengths[b]-1 contiguously, slot s holding the
// token at position s. Prompts are therefore prefilled RIGHT-padded: pass ids [B, T] with an
// attention mask whose ones come first; each row's padded slots are written but not counted, and
// the row's next token overwrites them. A row's next token always goes to slot lengths[b] with
// position lengths[b], so rows of different lengths decode together in one batch.
//
// Typical rollout use (see Transformer::forward and rollout::RolloutEngine):
//   KVCache cache(model->spec(), n_prompts, max_prompt + max_new, dtype, device);
//   auto out = model->forward(prompt_ids, prompt_mask, &cache);            // prefill
//   cache.select_rows(torch::tensor({0, 0, 1, 1}));                          // G = 2 completions per prompt
//   loop: out = model->forward(next_ids /*[B,1]*/, {}, &cache);              // one token per row
//         cache.select_rows(still_running);                                  // drop finished rows
//         cache.copy_row(free_row, other_prefill, its_row);                  // refill a finished row's slot
#include <torch/torch.h>

#include <vector>

#include "grpo/model/model_spec.h"

namespace grpo::model {

class KVCache {
 public:
  /// Zero-filled buffers for `batch` rows of up to `capacity` tokens each.
  KVCache(const ModelSpec& spec, int64_t batch, int64_t capacity, torch::Dtype dtype = torch::kFloat32,
          torch::Device device = torch::kCPU);

  int64_t batch() const { return lengths_.size(0); }
  int64_t capacity() const { return capacity_; }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  /// Filled slots per row: [batch] int64 (on the cache's device).
  const torch::Tensor& lengths() const { return lengths_; }
  /// max(lengths()), kept on the host.
  int64_t max_length() const { return max_len_; }

  /// Keeps rows `index` ([n] int64, any order, repeats allowed) in that order: the batch becomes n.
  void select_rows(const torch::Tensor& index);
  /// Copies row `src_row` of `src` (all layers, its length) into row `dst_row` of this cache.
  /// Throws grpo::InternalError when layer counts, heads or capacity differ.
  void copy_row(int64_t dst_row, const KVCache& src, int64_t src_row);

  // ---- used by the attention layers during Transformer::forward ----

  /// Writes k, v [B, n_kv_heads, T, head_dim] of layer `layer` into slots lengths[b] + t and returns
  /// the filled prefix of the buffers [B, n_kv_heads, S, head_dim], S = max(lengths) + T. Throws
  /// grpo::InputError when a row would exceed capacity.
  std::pair<torch::Tensor, torch::Tensor> write(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  /// Advances lengths by the number of real tokens per row (`added`: [B] int64) once every layer
  /// has written its step.
  void advance(const torch::Tensor& added);

 private:
  int64_t capacity_;
  std::vector<torch::Tensor> k_, v_;  // per layer [B, Hkv, capacity, head_dim]
  torch::Tensor lengths_;              // [B] int64
  int64_t max_len_ = 0;                // host copy of lengths_.max() (avoids a device sync per layer)
};

}  // namespace grpo::model
