#include "tool_prefill.h"

#include "bf16_forward.h"
#include "grpo/rollout/tools.h"

namespace grpo::rollout {

std::shared_ptr<SidePrefill> side_prefill(SidePrefillContext& ctx, const PausedRow& row, const std::string& body) {
  auto out = std::make_shared<SidePrefill>();
  out->ids = tool_result_tokens(ctx.tok, ctx.tools, body);
  out->begin = row.prefix.size();
  if (static_cast<int64_t>(out->ids.size()) >= row.room) return out;  // the result ends the completion
  torch::InferenceMode inference;  // per thread, as the engine's
  model::PackedWeightsScope packed(ctx.packed);
  std::lock_guard<std::mutex> lock(ctx.mu);
  std::vector<int64_t> feed{row.pending};
  feed.insert(feed.end(), out->ids.begin(), out->ids.end());
  const auto T = static_cast<int64_t>(feed.size());
  const torch::Device device = ctx.model->device();
  model::KVCache side(ctx.model->spec(), 1, out->begin + T, rollout_cache_dtype(ctx.model, ctx.bf16), device);
  model::write_row_slots(side, {0}, {0}, {&row.prefix});
  auto ids = torch::tensor(feed, torch::kInt64).to(device).view({1, T});                // [1, T]
  auto hidden = rollout_forward(ctx.model, ids, torch::Tensor(), &side, ctx.bf16).hidden;  // [1, T, D]
  out->last_hidden = hidden.select(1, T - 1);                                            // [1, D]
  out->fed = model::row_slot_views(side, 0, out->begin, T);
  return out;
}

}  // namespace grpo::rollout
