#include "grpo/model/kv_cache_rows.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::model {

namespace {

// Views of layer `layer`'s K and V buffers over slots 0 .. max_length()-1: [B, Hkv, S, head_dim].
// KVCache::write with T = 0 scatters nothing and leaves the lengths alone (advance is not called).
std::pair<torch::Tensor, torch::Tensor> filled_views(KVCache& cache, int64_t layer) {
  auto none = torch::empty({cache.batch(), 1, 0, 1}, torch::TensorOptions().device(cache.lengths().device()));
  return cache.write(layer, none, none);
}

}  // namespace

void copy_row_prefixes(KVCache& dst, const std::vector<int64_t>& dst_rows, KVCache& src,
                       const std::vector<int64_t>& src_rows) {
  GRPO_CHECK(dst_rows.size() == src_rows.size(), dst_rows.size(), " destination rows for ", src_rows.size());
  GRPO_CHECK(dst.num_layers() == src.num_layers(), "caches of different layer counts");
  const auto n = static_cast<int64_t>(dst_rows.size());
  if (n == 0) return;
  auto src_len = src.lengths().to(torch::kCPU);  // [src batch] int64
  auto dst_len = dst.lengths().to(torch::kCPU);  // [dst batch] int64
  auto added = torch::zeros_like(dst_len);        // [dst batch]: new length - old length
  std::vector<int64_t> len(static_cast<size_t>(n));
  std::vector<bool> seen(static_cast<size_t>(dst.batch()), false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = dst_rows[i], s = src_rows[i];
    GRPO_CHECK(d >= 0 && d < dst.batch() && s >= 0 && s < src.batch(), "row out of range");
    GRPO_CHECK(!seen[d], "destination row ", d, " repeated");
    seen[d] = true;
    len[i] = src_len[s].item<int64_t>();
    GRPO_CHECK(len[i] <= dst.capacity(), "row of ", len[i], " tokens, destination capacity ", dst.capacity());
    added[d] = len[i] - dst_len[d].item<int64_t>();
  }
  // Lengths first, so that dst's filled views cover every row's new length.
  dst.advance(added.to(dst.lengths().device()));
  for (int64_t l = 0; l < dst.num_layers(); ++l) {
    auto [sk, sv] = filled_views(src, l);
    auto [dk, dv] = filled_views(dst, l);
    GRPO_CHECK(sk.size(1) == dk.size(1) && sk.size(3) == dk.size(3), "caches of different shapes");
    for (int64_t i = 0; i < n; ++i) {
      if (len[i] == 0) continue;
      dk[dst_rows[i]].narrow(1, 0, len[i]).copy_(sk[src_rows[i]].narrow(1, 0, len[i]));
      dv[dst_rows[i]].narrow(1, 0, len[i]).copy_(sv[src_rows[i]].narrow(1, 0, len[i]));
    }
  }
}

}  // namespace grpo::model
