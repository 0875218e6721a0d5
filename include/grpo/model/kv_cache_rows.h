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

}  // namespace grpo::model
