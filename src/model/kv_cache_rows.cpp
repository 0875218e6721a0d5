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

RowSlots row_slot_views(KVCache& cache, int64_t row, int64_t begin, int64_t n) {
  GRPO_CHECK(row >= 0 && row < cache.batch(), "row ", row, " out of range");
  const int64_t len = cache.lengths()[row].item<int64_t>();
  GRPO_CHECK(begin >= 0 && n >= 0 && begin + n <= len, "slots ", begin, " + ", n, " of a row of ", len, " tokens");
  RowSlots out;
  for (int64_t l = 0; l < cache.num_layers(); ++l) {
    auto [k, v] = filled_views(cache, l);  // [B, Hkv, S, head_dim]
    out.k.push_back(k[row].narrow(1, begin, n));
    out.v.push_back(v[row].narrow(1, begin, n));
  }
  return out;
}

void write_row_slots(KVCache& dst, const std::vector<int64_t>& rows, const std::vector<int64_t>& begins,
                     const std::vector<const RowSlots*>& slots) {
  GRPO_CHECK(rows.size() == begins.size() && rows.size() == slots.size(), "rows, begins and slots differ in size");
  const auto n = static_cast<int64_t>(rows.size());
  if (n == 0) return;
  auto len = dst.lengths().to(torch::kCPU);  // [batch] int64
  auto added = torch::zeros_like(len);
  std::vector<bool> seen(static_cast<size_t>(dst.batch()), false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[i];
    GRPO_CHECK(r >= 0 && r < dst.batch(), "row ", r, " out of range");
    GRPO_CHECK(!seen[r], "row ", r, " repeated");
    seen[r] = true;
    GRPO_CHECK(len[r].item<int64_t>() == begins[i], "row ", r, " holds ", len[r].item<int64_t>(), " tokens, not ",
               begins[i]);
    GRPO_CHECK(static_cast<int64_t>(slots[i]->k.size()) == dst.num_layers(), "slots of another layer count");
    GRPO_CHECK(begins[i] + slots[i]->size() <= dst.capacity(), "row of ", begins[i] + slots[i]->size(),
               " tokens, capacity ", dst.capacity());
    added[r] = slots[i]->size();
  }
  dst.advance(added.to(dst.lengths().device()));  // first, so the filled views cover the new slots
  for (int64_t l = 0; l < dst.num_layers(); ++l) {
    auto [dk, dv] = filled_views(dst, l);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t m = slots[i]->size();
      if (m == 0) continue;
      dk[rows[i]].narrow(1, begins[i], m).copy_(slots[i]->k[l]);
      dv[rows[i]].narrow(1, begins[i], m).copy_(slots[i]->v[l]);
    }
  }
}

}  // namespace grpo::model
