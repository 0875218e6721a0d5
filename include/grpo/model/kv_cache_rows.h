#pragma once
// Copying rows between KV caches of different capacities, filled prefix only.
//
// Why not KVCache::copy_row: it copies a row's whole capacity and needs equal capacities, so a
// few-token prefill on copies of k rows (the rollout's tool-result injection) paid for k rows of
// max_prompt + max_new slots per layer, twice (154 ms mean for 32 rows in bench_tool_rollout_bench).
// This lives outside kv_cache.h (included almost everywhere) and uses only KVCache's public API.
#include <vector>

#include "grpo/model/kv_cache.h"

namespace grpo::model {

/// For each i, copies the filled slots 0 .. L-1 of row src_rows[i] of `src` (all layers; L = its
/// length) into the same slots of row dst_rows[i] of `dst`, and sets that row's length to L. Slots of
/// dst at or past L are left as they are (not counted, like a right-padded row's padding). The
/// capacities may differ; dst's must hold L. Layer counts, heads and head_dim must match, dst_rows
/// must not repeat (grpo::InternalError otherwise). `src` is not changed: it is non-const only
/// because its buffers are reached through KVCache::write with no token (T = 0), which returns
/// views of the filled prefix of every row and writes nothing.
void copy_row_prefixes(KVCache& dst, const std::vector<int64_t>& dst_rows, KVCache& src,
                       const std::vector<int64_t>& src_rows);

/// Some slots of one row, all layers: k[l], v[l] are [n_kv_heads, n, head_dim].
struct RowSlots {
  std::vector<torch::Tensor> k, v;
  int64_t size() const { return k.empty() ? 0 : k.front().size(1); }
};

/// Views (no copy) of slots begin .. begin + n - 1 of row `row`, which must be filled (begin + n <=
/// its length; grpo::InternalError otherwise). They share the cache's buffers: a later in-place
/// write to those slots shows in them; after select_rows (which gives the cache new buffers) they
/// keep the old buffers alive and the values they had. Why: the rollout hands a paused row's
/// prefix to another thread, and a paused row's filled slots are not written until it resumes.
RowSlots row_slot_views(KVCache& cache, int64_t row, int64_t begin, int64_t n);

/// For each i, writes slots[i] into slots begins[i] .. begins[i] + n_i - 1 of row rows[i] (all
/// layers; n_i = slots[i]->size()) and sets that row's length to begins[i] + n_i. The row's length
/// must be begins[i] (its slots before are kept) and rows must not repeat (grpo::InternalError).
void write_row_slots(KVCache& dst, const std::vector<int64_t>& rows, const std::vector<int64_t>& begins,
                     const std::vector<const RowSlots*>& slots);

}  // namespace grpo::model
