#include "tool_prefill.h"

#include <chrono>

#include "bf16_forward.h"
#include "grpo/rollout/tools.h"

namespace grpo::rollout {

namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Moving average (weight 1/4 on the new sample); the first sample sets it.
void average_in(std::atomic<double>& avg, double x) {
  const double old = avg.load();
  avg.store(old == 0.0 ? x : 0.75 * old + 0.25 * x);
}

}  // namespace

bool SidePrefillContext::worth_it() const {
  if (!automatic) return true;
  if (in_flight.load() >= 2) return true;
  const int64_t began = step_began_ns.load();
  if (began == 0) return false;
  const double left = step_s.load() - double(steady_ns() - began) * 1e-9;
  return left > prefill_s.load();
}

void SidePrefillContext::step_begins() { step_began_ns.store(steady_ns()); }

void SidePrefillContext::step_ends() {
  const int64_t began = step_began_ns.exchange(0);
  if (began != 0) average_in(step_s, double(steady_ns() - began) * 1e-9);
}

std::shared_ptr<SidePrefill> side_prefill(SidePrefillContext& ctx, const PausedRow& row, const std::string& body) {
  auto out = std::make_shared<SidePrefill>();
  out->ids = tool_result_tokens(ctx.tok, ctx.tools, body);
  out->begin = row.prefix.size();
  if (static_cast<int64_t>(out->ids.size()) >= row.room) return out;  // the result ends the completion
  torch::InferenceMode inference;  // per thread, as the engine's
  model::PackedWeightsScope packed(ctx.packed);
  std::lock_guard<std::mutex> lock(ctx.mu);
  const int64_t t0 = steady_ns();
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
  average_in(ctx.prefill_s, double(steady_ns() - t0) * 1e-9);
  return out;
}

}  // namespace grpo::rollout
