#include "prefill.h"

#include <algorithm>

#include "bf16_forward.h"

namespace grpo::rollout {

Prefill prefill_chunks(model::Transformer model, const DecodeHead& head,
                       const std::vector<std::vector<int64_t>>& prompt_ids, const std::vector<Chunk>& chunks,
                       int64_t capacity, bool with_seen, bool bf16) {
  const auto device = model->device();
  const int64_t A = static_cast<int64_t>(chunks.size());
  int64_t tmax = 0;
  for (const auto& ch : chunks) tmax = std::max<int64_t>(tmax, prompt_ids[ch.prompt].size());
  auto ids = torch::zeros({A, tmax}, torch::kInt64);   // [A, tmax]
  auto mask = torch::zeros({A, tmax}, torch::kInt64);  // [A, tmax], ones first
  auto last = torch::zeros({A}, torch::kInt64);        // [A] index of each prompt's last token
  int64_t prompt_tokens = 0;
  for (int64_t a = 0; a < A; ++a) {
    const auto& p = prompt_ids[chunks[a].prompt];
    const int64_t L = static_cast<int64_t>(p.size());
    ids[a].fill_(p[0]);
    ids[a].narrow(0, 0, L).copy_(torch::tensor(p, torch::kInt64));
    mask[a].narrow(0, 0, L).fill_(1);
    last[a] = L - 1;
    prompt_tokens += L;
  }
  ids = ids.to(device);
  model::KVCache cache(model->spec(), A, capacity, rollout_cache_dtype(model, bf16), device);
  auto out = rollout_forward(model, ids, mask.to(device), &cache, bf16);
  auto h = out.hidden.index({torch::arange(A, torch::TensorOptions().device(device)), last.to(device)});
  auto logits_p = head(h);  // [A, V]
  // Expand to one row per new completion.
  std::vector<int64_t> src;
  for (int64_t a = 0; a < A; ++a)
    for (int64_t k = 0; k < chunks[a].count; ++k) src.push_back(a);
  auto src_t = torch::tensor(src, torch::kInt64).to(device);
  Prefill r{std::move(cache), logits_p.index_select(0, src_t), torch::Tensor(), src, prompt_tokens};
  if (with_seen) {
    const auto opts = torch::TensorOptions().dtype(torch::kBool).device(device);
    auto seen_p = torch::zeros({A, model->spec().vocab_size}, opts);  // [A, V]
    seen_p.scatter_(1, ids, true);
    r.seen = seen_p.index_select(0, src_t);
  }
  return r;
}

}  // namespace grpo::rollout
