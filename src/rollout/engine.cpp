#include "grpo/rollout/engine.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>

#include "bf16_forward.h"
#include "completion_builder.h"
#include "grpo/model/kv_cache_rows.h"
#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/sampling.h"
#include "grpo/rollout/slot_scheduler.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"
#include "prefill.h"
#include "step_sampler.h"
#include "tool_call_parser.h"
#include "tool_prefill.h"
#include "tool_runner.h"

namespace grpo::rollout {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Per prompt: the most new tokens (its context may end first); and the tokens of one cache row.
struct PromptPlan {
  std::vector<int64_t> max_new;  // [P]
  int64_t capacity = 0;          // longest prompt + its max_new
};

// Throws grpo::InputError for an empty prompt, one that fills the context, or an id outside the
// vocabulary.
PromptPlan plan_prompts(const std::vector<std::vector<int64_t>>& prompt_ids, int64_t max_completion_length,
                        const model::ModelSpec& spec) {
  const int64_t V = spec.vocab_size;
  const int64_t ctx = spec.max_position_embeddings;
  PromptPlan plan;
  for (size_t i = 0; i < prompt_ids.size(); ++i) {
    const auto& p = prompt_ids[i];
    const int64_t L = static_cast<int64_t>(p.size());
    GRPO_REQUIRE(L >= 1, "prompt ", i, " is empty: a prompt needs at least one token");
    GRPO_REQUIRE(L < ctx, "prompt ", i, " has ", L, " tokens but the model's context is ", ctx,
                 " tokens (max_position_embeddings), which leaves no room for a completion");
    for (size_t t = 0; t < p.size(); ++t)
      GRPO_REQUIRE(p[t] >= 0 && p[t] < V, "prompt ", i, " token ", t, " is id ", p[t],
                   ", outside the model's vocabulary [0, ", V, ")");
    plan.max_new.push_back(std::min<int64_t>(max_completion_length, ctx - L));
    plan.capacity = std::max(plan.capacity, L + plan.max_new.back());
  }
  return plan;
}

// What a generate() call shares with its run.
struct RunContext {
  model::Transformer model;
  const DecodeHead& head;
  const CompletionBuilder& builder;
  const StepSampler& sampler;
  RolloutStats& stats;
  const std::function<void(int64_t, int64_t)>& progress;
  bool penalty;  // a repetition penalty: keep the [slots, V] "seen" mask
  bool bf16;     // forwards under CPU bf16 autocast, bf16 KV cache (bf16_forward.h)
  const config::ToolsConfig& tools;
  const ToolExecutor* tool_exec;  // null: tools off
  const tok::Tokenizer& tok;
  const std::function<int64_t(int64_t, int64_t)>& force;  // set_forced_tokens_for_testing
  double temperature;
  model::PackedWeights* packed;  // the packed weights of the run's scope, or null
  int side_prefill;              // RolloutEngine::set_tool_side_prefill: 1 on, 0 off, -1 per result
};

// A scripted policy (tests): replaces the draws of the rows whose completion force() scripts; the
// logprob is the policy's for the forced token (log_softmax(logits / T), raw logits when T == 0).
// logits [n, V]; outs[k], positions[k]: row k's completion (-1: leave the row) and token position.
void apply_forced(const RunContext& c, const torch::Tensor& logits, const std::vector<int64_t>& outs,
                  const std::vector<int64_t>& positions, StepDraws& draws) {
  if (!c.force) return;
  for (size_t k = 0; k < outs.size(); ++k) {
    const int64_t t = outs[k] < 0 ? -1 : c.force(outs[k], positions[k]);
    if (t < 0) continue;
    auto row = logits[static_cast<int64_t>(k)].to(torch::kFloat32);
    draws.ids[k] = t;
    draws.logprobs[k] = (c.temperature > 0 ? row / c.temperature : row).log_softmax(-1)[t].item<float>();
  }
}

// One generate() call: the scheduler decides which completions hold which slots; this class keeps
// the KV cache, the sequences, their pending tokens and the "seen" mask in slot order, applying
// the scheduler's placements and compactions to them.
class GenerateRun {
 public:
  GenerateRun(const RunContext& ctx, const std::vector<std::vector<int64_t>>& prompt_ids, int64_t num_generations,
              const std::vector<uint64_t>& prompt_seeds, const PromptPlan& plan, SlotLimits limits)
      : c_(ctx), prompt_ids_(prompt_ids), G_(num_generations), prompt_seeds_(prompt_seeds), plan_(plan),
        model_(ctx.model), device_(ctx.model->device()),
        sched_(static_cast<int64_t>(prompt_ids.size()), num_generations, limits),
        results_(prompt_ids.size() * num_generations) {
    for (size_t i = 0; i < prompt_ids.size(); ++i)
      for (int64_t j = 0; j < G_; ++j) {
        results_[i * G_ + j].prompt_index = static_cast<int64_t>(i);
        results_[i * G_ + j].prompt_length = static_cast<int>(prompt_ids[i].size());
      }
  }

  std::vector<Completion> run() {
    while (true) {
      const int64_t finished_before = n_finished_, held_before = sched_.held();
      const bool admitted = admit();
      if (runner_) resume_tools();
      compact();
      if (c_.progress) c_.progress(n_finished_, static_cast<int64_t>(results_.size()));
      if (seqs_.empty()) {
        if (sched_.queue().empty()) break;
        // Rows that finished after admit() (a tool result's injection ended them, here or within
        // the last step) free their slots only now: admission is tried again.
        GRPO_CHECK(admitted || n_finished_ != finished_before || sched_.held() != held_before,
                   "scheduler made no progress");
        continue;
      }
      if (sched_.running() > 0) {
        if (side_) side_->step_begins();  // what the workers' choice of prefill reads
        decode_step();
        if (side_) side_->step_ends();
      }
    }
    return std::move(results_);
  }

 private:
  enum class Step { GO, DONE, CALL };  // what a token did to its completion
  bool admit();
  void resume_tools(bool may_block = true);
  void pause_for_call(int64_t slot);
  void inject(const std::vector<int64_t>& slots, const std::vector<ToolRunner::Done>& dones);
  torch::Tensor prefill_rows(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& feeds);
  void record_call(const ToolRunner::Done& done, Clock::time_point issued, Clock::time_point taken, bool side = false);
  void install(Prefill& pf, const Placement& placement, std::vector<Sequence>& seqs, const std::vector<int64_t>& rows,
               const std::vector<int64_t>& tokens);
  void compact();
  void decode_step();

  // Appends a drawn token to the completion `out`; counts it when that finishes it; CALL when it
  // closes a tool call (rollout.tools) that is to run.
  Step append(int64_t out, Sequence& s, int64_t token, float logprob) {
    const bool done = c_.builder.append(results_[out], s, token, logprob);
    n_finished_ += done;
    if (done) return Step::DONE;
    if (!c_.tool_exec || s.tool.calls >= c_.tools.max_tool_calls) return Step::GO;
    const auto call = parser_.find(s.dec->text(), s.tool);
    if (!call) return Step::GO;
    calls_[out] = s.dec->text().substr(call->code_begin, call->code_end - call->code_begin);
    ++s.tool.calls;
    return Step::CALL;  // the caller pauses its slot (pause_for_call), which issues the call
  }

  const RunContext& c_;
  const std::vector<std::vector<int64_t>>& prompt_ids_;
  const int64_t G_;
  const std::vector<uint64_t>& prompt_seeds_;
  const PromptPlan& plan_;
  model::Transformer model_;  // forward() is not const in torch::nn
  const torch::Device device_;
  SlotScheduler sched_;
  std::vector<Completion> results_;      // completion j of prompt i at i * G + j
  int64_t n_finished_ = 0;
  std::optional<model::KVCache> cache_;  // row s <-> slot s; none while no slot is held
  std::vector<Sequence> seqs_;           // per slot
  std::vector<int64_t> pending_;         // per slot: the sampled token not yet fed to the model
  torch::Tensor seen_;                   // [slots, V] bool, only with a repetition penalty
  ToolCallParser parser_{c_.tools};
  std::map<int64_t, std::string> calls_;  // per completion: the program of a call found, not issued yet
  // Side prefills (tool_prefill.h) where they help: a CPU model with a core the engine's forwards
  // leave free, and results taken whenever ready. Declared before runner_, whose threads use it
  // until they are joined.
  std::unique_ptr<SidePrefillContext> side_ =
      c_.tool_exec && c_.side_prefill != 0 && c_.tools.overlap && device_.is_cpu() &&
              static_cast<unsigned>(at::get_num_threads()) < std::thread::hardware_concurrency()
          ? std::make_unique<SidePrefillContext>(c_.model, c_.packed, c_.bf16, c_.tok, c_.tools, c_.side_prefill < 0)
          : nullptr;
  // As many calls may wait at once as rows are held (each paused row waits for one), at most
  // kMaxPrestarted (an idle interpreter holds ~3 MiB of its own).
  static constexpr int64_t kMaxPrestarted = 64;
  std::unique_ptr<ToolRunner> runner_ =
      c_.tool_exec ? std::make_unique<ToolRunner>(
                         *c_.tool_exec, c_.tools.num_workers,
                         static_cast<int>(std::min({sched_.limits().row_limit,
                                                    static_cast<int64_t>(prompt_ids_.size()) * G_, kMaxPrestarted})))
                   : nullptr;
  std::map<int64_t, Clock::time_point> issued_;  // per ticket in flight: when its call was issued
};

// Admission: prefills the chunks the scheduler admits, draws each new completion's first token
// and gives the completions that go on a slot. Returns whether a chunk was admitted.
bool GenerateRun::admit() {
  const std::vector<Chunk> chunks = sched_.admit();
  if (chunks.empty()) return false;
  const auto t0 = Clock::now();
  Prefill pf = prefill_chunks(model_, c_.head, prompt_ids_, chunks, plan_.capacity, c_.penalty, c_.bf16);
  c_.stats.prompt_tokens += pf.prompt_tokens;
  c_.stats.prefill_seconds += seconds_since(t0);
  std::vector<int64_t> outs;  // [n] completion index of each new row
  std::vector<uint64_t> streams, counters;
  for (const auto& ch : chunks)
    for (int64_t j = ch.first; j < ch.first + ch.count; ++j) {
      outs.push_back(ch.prompt * G_ + j);
      streams.push_back(substream_seed(prompt_seeds_[ch.prompt], static_cast<uint64_t>(j)));
      counters.push_back(0);
    }
  StepDraws draws = c_.sampler(pf.logits, pf.seen, streams, counters);
  apply_forced(c_, pf.logits, outs, std::vector<int64_t>(outs.size(), 0), draws);
  // New rows that survive their first token go on slots.
  std::vector<int64_t> survivors, rows, tokens;  // completion index, new row, pending token
  std::vector<Sequence> seqs;
  std::vector<bool> calls;  // per survivor: its first token closed a tool call
  for (size_t k = 0; k < outs.size(); ++k) {
    Sequence s = c_.builder.start(plan_.max_new[chunks[pf.chunk_of[k]].prompt], streams[k]);
    const Step step = append(outs[k], s, draws.ids[k], draws.logprobs[k]);
    if (step == Step::DONE) continue;
    calls.push_back(step == Step::CALL);
    survivors.push_back(outs[k]);
    rows.push_back(static_cast<int64_t>(k));
    tokens.push_back(draws.ids[k]);
    seqs.push_back(std::move(s));
  }
  const Placement placement = sched_.place(survivors);
  install(pf, placement, seqs, rows, tokens);
  for (size_t q = 0; q < calls.size(); ++q)
    if (calls[q]) pause_for_call(placement.slots[q]);
  return true;
}

// Pauses the slot whose last token closed a call (its pending token) and issues the call. With side
// prefills, the worker gets views of the row's filled slots: they stay as they are while it waits.
void GenerateRun::pause_for_call(int64_t slot) {
  sched_.pause(slot);
  const int64_t out = sched_.seq(slot);
  auto it = calls_.find(out);
  GRPO_CHECK(it != calls_.end(), "no call found for completion ", out);
  ToolCall call{c_.tools.enabled.front(), std::move(it->second)};
  calls_.erase(it);
  ToolRunner::After after;
  if (side_) {
    PausedRow row;
    row.prefix = model::row_slot_views(*cache_, slot, 0, cache_->lengths()[slot].item<int64_t>());
    row.pending = pending_[slot];
    row.room = seqs_[slot].max_new - static_cast<int64_t>(results_[out].token_ids.size());
    after = [ctx = side_.get(), row = std::move(row)](const ToolResult& r) {
      return ctx->worth_it() ? side_prefill(*ctx, row, r.body) : nullptr;  // null: the engine prefills it
    };
    ++side_->in_flight;
  }
  Sequence& s = seqs_[slot];
  s.tool.ticket = runner_->submit(std::move(call), std::move(after));
  issued_[s.tool.ticket] = Clock::now();
}

// Injects the tool results that are ready, in slot order, in one batched prefill. Blocks for one
// when no slot can decode (all live sequences wait), and for all of them without
// rollout.tools.overlap (so which step injects a result never depends on thread timing).
void GenerateRun::resume_tools(bool may_block) {
  std::vector<int64_t> waiting;  // tickets of the paused slots
  for (int64_t s = 0; s < sched_.held(); ++s)
    if (sched_.state(s) == SlotState::PAUSED) waiting.push_back(seqs_[s].tool.ticket);
  if (waiting.empty()) return;
  if (may_block && c_.tools.overlap && sched_.running() == 0) runner_->wait_any(waiting);
  std::vector<int64_t> slots;
  std::vector<ToolRunner::Done> dones;
  for (int64_t s = 0; s < sched_.held(); ++s) {
    if (sched_.state(s) != SlotState::PAUSED) continue;
    const int64_t ticket = seqs_[s].tool.ticket;
    if (c_.tools.overlap && !runner_->ready(ticket)) continue;
    slots.push_back(s);
    dones.push_back(runner_->take(ticket));
  }
  if (!slots.empty()) inject(slots, dones);
}

// Appends each call's result (dones[q]) to the paused sequence in slots[q] and puts its pending
// token (the one that closed the call) and the result's tokens into the row's cache: a result the
// worker prefilled already (Done::side) by copying the new slots; the others by one right-padded
// forward of all of them on a copy of their rows (one forward, not one per result: results that
// arrive together would otherwise queue behind each other's prefills). Each next token is drawn
// from its row's last position, and the slots run again (or finish).
void GenerateRun::inject(const std::vector<int64_t>& slots, const std::vector<ToolRunner::Done>& dones) {
  const Clock::time_point taken = Clock::now();
  std::vector<Clock::time_point> issued(slots.size());
  std::vector<size_t> fed;                  // indices q of the results prefilled (not cut to the end)
  std::vector<std::vector<int64_t>> feeds;  // per fed result: pending token + injected ids
  std::vector<const SidePrefill*> sides;    // per fed result: its side prefill, or null
  auto lengths = cache_->lengths().to(torch::kCPU);  // [held] int64
  for (size_t q = 0; q < slots.size(); ++q) {
    const int64_t slot = slots[q];
    Sequence& s = seqs_[slot];
    Completion& c = results_[sched_.seq(slot)];
    const ToolResult& result = dones[q].result;
    issued[q] = issued_.at(s.tool.ticket);
    issued_.erase(s.tool.ticket);
    if (side_) --side_->in_flight;
    s.tool.ticket = -1;
    ++c.tool_calls;
    c.tool_errors += result.outcome == ToolOutcome::ERROR;
    c.tool_timeouts += result.outcome == ToolOutcome::TIMEOUT;
    ++c_.stats.tool_calls;
    c_.stats.tool_run_seconds += result.run_seconds;
    const SidePrefill* side = dones[q].side.get();
    const std::vector<int64_t> ids = side ? side->ids : tool_result_tokens(c_.tok, c_.tools, result.body);
    const size_t before = c.token_ids.size();
    const bool full = c_.builder.inject(c, s, ids);
    const int64_t n = static_cast<int64_t>(c.token_ids.size() - before);
    c_.stats.injected_tokens += n;
    if (full) {
      ++n_finished_;
      sched_.finish(slot);
      record_call(dones[q], issued[q], taken);
      continue;
    }
    fed.push_back(q);
    feeds.push_back({pending_[slot]});
    feeds.back().insert(feeds.back().end(), ids.begin(), ids.begin() + n);
    const bool usable = side && side->last_hidden.defined() && side->begin == lengths[slot].item<int64_t>() &&
                        side->fed.size() == static_cast<int64_t>(feeds.back().size());
    sides.push_back(usable ? side : nullptr);
  }
  if (fed.empty()) return;
  const auto k = static_cast<int64_t>(fed.size());
  std::vector<int64_t> outs(k), pos(k), slot_of(k);
  std::vector<uint64_t> streams(k), counters(k);
  for (int64_t r = 0; r < k; ++r) {
    slot_of[r] = slots[fed[r]];
    outs[r] = sched_.seq(slot_of[r]);
    pos[r] = static_cast<int64_t>(results_[outs[r]].token_ids.size());
    streams[r] = seqs_[slot_of[r]].stream;
    counters[r] = static_cast<uint64_t>(pos[r]);
  }
  std::vector<torch::Tensor> hidden(k);  // per fed result: [1, D], its last token's hidden state
  std::vector<int64_t> copy_rows, copy_begins, here;  // here: the r prefilled on this thread
  std::vector<const model::RowSlots*> copy_slots;
  for (int64_t r = 0; r < k; ++r) {
    if (!sides[r]) {
      here.push_back(r);
      continue;
    }
    copy_rows.push_back(slot_of[r]);
    copy_begins.push_back(sides[r]->begin);
    copy_slots.push_back(&sides[r]->fed);
    hidden[r] = sides[r]->last_hidden;
    if (c_.penalty) seen_[slot_of[r]].scatter_(0, torch::tensor(feeds[r], torch::kInt64).to(device_), true);
  }
  model::write_row_slots(*cache_, copy_rows, copy_begins, copy_slots);
  if (!here.empty()) {
    std::vector<int64_t> hs;
    std::vector<std::vector<int64_t>> hf;
    int64_t T = 0, longest = 0;  // longest feed; longest cached row (its prompt and tokens before the feed)
    for (int64_t r : here) {
      hs.push_back(slot_of[r]);
      hf.push_back(feeds[r]);
      const auto len = static_cast<int64_t>(feeds[r].size());
      T = std::max(T, len);
      longest = std::max(longest, results_[outs[r]].prompt_length + pos[r] - len);
    }
    // One batch when the padded rows fit a cache row (the longest row + T), else row by row.
    if (longest + T <= cache_->capacity()) {
      auto h = prefill_rows(hs, hf);  // [here, D]
      for (size_t i = 0; i < here.size(); ++i) hidden[here[i]] = h.narrow(0, static_cast<int64_t>(i), 1);
    } else {
      for (size_t i = 0; i < here.size(); ++i) hidden[here[i]] = prefill_rows({hs[i]}, {hf[i]});
    }
  }
  for (int64_t r = 0; r < k; ++r) record_call(dones[fed[r]], issued[fed[r]], taken, sides[r] != nullptr);  // tokens in the cache
  auto logits = c_.head(torch::cat(hidden));  // [k, V]
  torch::Tensor seen;  // [k, V] bool, only with a repetition penalty
  if (c_.penalty) seen = seen_.index_select(0, torch::tensor(slot_of, torch::kInt64).to(device_));
  StepDraws draws = c_.sampler(logits, seen, streams, counters);
  apply_forced(c_, logits, outs, pos, draws);
  for (int64_t r = 0; r < k; ++r) {
    const int64_t slot = slot_of[r];
    sched_.resume(slot);
    const Step step = append(outs[r], seqs_[slot], draws.ids[r], draws.logprobs[r]);
    if (step == Step::DONE) {
      sched_.finish(slot);
      continue;
    }
    pending_[slot] = draws.ids[r];
    if (step == Step::CALL) pause_for_call(slot);
  }
}

// Runs feeds[r] through the model after the cache row of slots[r] (all rows in one forward,
// right-padded to the longest feed, on a copy of those rows that is written back), marks them in
// the "seen" rows, and returns the hidden state of each feed's last token: [k, D].
torch::Tensor GenerateRun::prefill_rows(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& feeds) {
  const auto k = static_cast<int64_t>(slots.size());
  int64_t T = 0;
  bool ragged = false;
  for (const auto& f : feeds) {
    ragged = ragged || (T > 0 && static_cast<int64_t>(f.size()) != T);
    T = std::max(T, static_cast<int64_t>(f.size()));
  }
  std::vector<int64_t> ids(static_cast<size_t>(k * T), 0), ones(static_cast<size_t>(k * T), 0), last(k);
  for (int64_t r = 0; r < k; ++r) {
    std::copy(feeds[r].begin(), feeds[r].end(), ids.begin() + r * T);
    std::fill_n(ones.begin() + r * T, feeds[r].size(), 1);
    last[r] = static_cast<int64_t>(feeds[r].size()) - 1;
  }
  auto ids_t = torch::tensor(ids, torch::kInt64).to(device_).view({k, T});  // [k, T], right-padded
  torch::Tensor mask;  // [k, T] int64, only when the feeds differ in length (all ones otherwise)
  if (ragged) mask = torch::tensor(ones, torch::kInt64).to(device_).view({k, T});
  // The copy holds only what the forward reads and writes (the longest of these rows + T slots),
  // and only the filled prefixes move: copying capacity-long rows dominated a burst of calls.
  auto slots_t = torch::tensor(slots, torch::kInt64);
  const int64_t filled = cache_->lengths().to(torch::kCPU).index_select(0, slots_t).max().item<int64_t>();
  model::KVCache part(model_->spec(), k, std::min(cache_->capacity(), filled + T), rollout_cache_dtype(model_, c_.bf16),
                      device_);
  std::vector<int64_t> rows(k);
  std::iota(rows.begin(), rows.end(), int64_t{0});
  model::copy_row_prefixes(part, rows, *cache_, slots);
  auto hidden = rollout_forward(model_, ids_t, mask, &part, c_.bf16).hidden;  // [k, T, D]
  model::copy_row_prefixes(*cache_, slots, part, rows);
  for (int64_t r = 0; r < k; ++r)
    if (c_.penalty) seen_[slots[r]].scatter_(0, ids_t[r].narrow(0, 0, last[r] + 1), true);
  auto rows_t = torch::arange(k, torch::TensorOptions().dtype(torch::kInt64).device(device_));
  return hidden.index({rows_t, torch::tensor(last, torch::kInt64).to(device_)});  // [k, D]
}

// Adds a call's timeline (ToolCallTiming) to the stats; called the moment its tokens are injected.
void GenerateRun::record_call(const ToolRunner::Done& done, Clock::time_point issued, Clock::time_point taken,
                              bool side) {
  const auto now = Clock::now();
  auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  ToolCallTiming t;
  t.queued = secs(issued, done.started);
  t.run = secs(done.started, done.ready);
  t.prefill = secs(done.ready, done.prepared);
  t.wait = secs(done.prepared, taken);
  t.inject = secs(taken, now);
  t.prestarted = done.result.prestarted;
  t.side = side;
  c_.stats.tool_start_to_inject_seconds += t.start_to_inject();
  c_.stats.tool_issue_to_inject_seconds += t.issue_to_inject();
  c_.stats.tool_call_timings.push_back(t);
}

// Puts the placed sequences on their slots: the cache rows of their prompts (pf.cache row
// pf.chunk_of[rows[q]]), their pending tokens and "seen" rows (pf.seen row rows[q]).
void GenerateRun::install(Prefill& pf, const Placement& placement, std::vector<Sequence>& seqs,
                          const std::vector<int64_t>& rows, const std::vector<int64_t>& tokens) {
  const int64_t held = placement.held_before, grow = placement.grown;
  seqs_.resize(static_cast<size_t>(held + grow));
  pending_.resize(static_cast<size_t>(held + grow));
  for (size_t q = 0; q < placement.slots.size(); ++q) {
    seqs_[placement.slots[q]] = std::move(seqs[q]);
    pending_[placement.slots[q]] = tokens[q];
  }
  if (!cache_ && !placement.slots.empty()) {
    // First admission (no slot held, so the slots are 0, 1, ...): the prefill cache itself becomes
    // the batch.
    std::vector<int64_t> idx(placement.slots.size());
    for (size_t q = 0; q < placement.slots.size(); ++q) idx[placement.slots[q]] = pf.chunk_of[rows[q]];
    pf.cache.select_rows(torch::tensor(idx, torch::kInt64));
    cache_.emplace(std::move(pf.cache));
    if (c_.penalty) seen_ = pf.seen.index_select(0, torch::tensor(rows, torch::kInt64).to(device_));
  } else if (cache_) {
    if (grow > 0) {  // new rows, overwritten below
      auto idx = torch::cat({torch::arange(held, torch::kInt64), torch::zeros({grow}, torch::kInt64)});
      cache_->select_rows(idx);
      if (c_.penalty) seen_ = seen_.index_select(0, idx.to(device_));
    }
    for (size_t q = 0; q < placement.slots.size(); ++q) {
      cache_->copy_row(placement.slots[q], pf.cache, pf.chunk_of[rows[q]]);
      if (c_.penalty) seen_[placement.slots[q]].copy_(pf.seen[rows[q]]);
    }
  }
}

// Finished rows whose slots were not refilled leave the batch, so decode work tracks live rows.
void GenerateRun::compact() {
  const size_t before = seqs_.size();
  const std::vector<int64_t> keep = sched_.compact();
  if (keep.size() == before) return;
  if (keep.empty()) {
    cache_.reset();
    seen_ = torch::Tensor();
    seqs_.clear();
    pending_.clear();
    return;
  }
  auto idx = torch::tensor(keep, torch::kInt64);
  cache_->select_rows(idx);
  if (c_.penalty) seen_ = seen_.index_select(0, idx.to(device_));
  std::vector<Sequence> seqs;
  std::vector<int64_t> pending;
  for (int64_t s : keep) {
    seqs.push_back(std::move(seqs_[s]));
    pending.push_back(pending_[s]);
  }
  seqs_ = std::move(seqs);
  pending_ = std::move(pending);
}

// One decode step: feeds every slot's pending token and draws its next one.
void GenerateRun::decode_step() {
  const int64_t B = static_cast<int64_t>(seqs_.size());
  c_.stats.peak_batch = std::max(c_.stats.peak_batch, B);
  c_.stats.peak_cache_tokens = std::max(c_.stats.peak_cache_tokens, cache_->batch() * plan_.capacity);
  auto step_ids = torch::tensor(pending_, torch::kInt64).to(device_).view({B, 1});  // [B, 1]
  if (c_.penalty) seen_.scatter_(1, step_ids, true);  // a paused row's pending token is fed at its resume
  // Paused rows (a tool call runs) are masked: their cache rows do not advance.
  std::vector<int64_t> live(static_cast<size_t>(B));  // the rows this step decodes
  for (int64_t s = 0; s < B; ++s) live[s] = sched_.state(s) == SlotState::RUNNING;
  torch::Tensor mask;  // [B, 1] int64, only while a row is paused
  if (sched_.paused() > 0) mask = torch::tensor(live, torch::kInt64).to(device_).view({B, 1});
  auto out = rollout_forward(model_, step_ids, mask, &*cache_, c_.bf16);
  auto logits = c_.head(out.hidden.select(1, 0));  // [B, V] float32 (the head runs outside autocast)
  // Tool results ready by now go in before this step's draws rather than after them (the draws
  // over a large vocabulary are a good part of a step): the cache is not read again this step,
  // and the rows they resume keep out of its draws (`live`).
  if (runner_ && c_.tools.overlap && sched_.paused() > 0) resume_tools(false);
  std::vector<uint64_t> streams(static_cast<size_t>(B)), counters(static_cast<size_t>(B));
  for (int64_t s = 0; s < B; ++s) {
    streams[s] = seqs_[s].stream;
    counters[s] = results_[sched_.seq(s)].token_ids.size();  // tokens drawn so far
  }
  StepDraws draws = c_.sampler(logits, seen_, streams, counters);
  if (c_.force) {
    std::vector<int64_t> outs(static_cast<size_t>(B)), pos(counters.begin(), counters.end());
    for (int64_t s = 0; s < B; ++s) outs[s] = live[s] ? sched_.seq(s) : -1;
    apply_forced(c_, logits, outs, pos, draws);
  }
  for (int64_t s = 0; s < B; ++s) {
    if (!live[s]) continue;  // paused at the step's start: its draw is dropped
    const Step step = append(sched_.seq(s), seqs_[s], draws.ids[s], draws.logprobs[s]);
    if (step == Step::DONE)
      sched_.finish(s);
    else
      pending_[s] = draws.ids[s];
    if (step == Step::CALL) pause_for_call(s);
  }
  ++c_.stats.decode_steps;
  c_.stats.decoded_rows += B;
}

}  // namespace

bool RolloutEngine::bf16_active() const { return bf16_ && model_->device().is_cpu(); }

RolloutEngine::RolloutEngine(model::Transformer model, const tok::Tokenizer& tokenizer, SamplingParams params,
                             EngineLimits limits)
    : model_(std::move(model)), tok_(&tokenizer), params_(std::move(params)), limits_(limits) {
  params_.validate();
  GRPO_REQUIRE(limits_.max_batch_size >= 1, "rollout.max_batch_size = ", limits_.max_batch_size, ": expected >= 1");
  GRPO_REQUIRE(limits_.kv_cache_budget_tokens >= 0, "rollout.kv_cache_budget_tokens = ", limits_.kv_cache_budget_tokens,
               ": expected >= 0");
  const int64_t vocab = model_->spec().vocab_size;
  eos_ids_ = params_.eos_token_ids;
  for (int32_t id : tok_->special().eos) eos_ids_.push_back(id);
  if (model_->spec().eos_token_id >= 0) eos_ids_.push_back(model_->spec().eos_token_id);
  std::sort(eos_ids_.begin(), eos_ids_.end());
  eos_ids_.erase(std::unique(eos_ids_.begin(), eos_ids_.end()), eos_ids_.end());
  for (int64_t id : eos_ids_)
    GRPO_REQUIRE(id >= 0 && id < vocab, "eos token id ", id, " is outside the model's vocabulary [0, ", vocab, ")");
  for (int64_t id : params_.stop_token_ids)
    GRPO_REQUIRE(id < vocab, "rollout.stop_token_ids: ", id, " is outside the model's vocabulary [0, ", vocab, ")");
  std::sort(params_.stop_token_ids.begin(), params_.stop_token_ids.end());
}

RolloutEngine::RolloutEngine(model::Transformer model, const tok::Tokenizer& tokenizer, const config::RolloutConfig& cfg)
    : RolloutEngine(std::move(model), tokenizer, SamplingParams::from_config(cfg),
                    EngineLimits{cfg.max_batch_size, cfg.kv_cache_budget_tokens}) {
  if (cfg.tools.on()) set_tools(cfg.tools);
}

void RolloutEngine::set_tools(const config::ToolsConfig& cfg, std::shared_ptr<const ToolExecutor> exec) {
  validate_tools(cfg);
  tools_ = cfg;
  if (!cfg.on()) {
    tool_exec_.reset();
    return;
  }
  tool_exec_ = exec ? std::move(exec) : std::shared_ptr<const ToolExecutor>(make_python_tool(cfg));
}

std::vector<Completion> RolloutEngine::generate_text(const std::vector<std::string>& prompts, int num_generations,
                                                     uint64_t seed) {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& p : prompts) {
    std::vector<int64_t> row;
    if (tok_->special().add_bos && tok_->special().bos) row.push_back(*tok_->special().bos);
    for (int32_t t : tok_->encode(p)) row.push_back(t);
    ids.push_back(std::move(row));
  }
  return generate(ids, num_generations, seed);
}

std::vector<Completion> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompt_ids,
                                                int num_generations, uint64_t seed) {
  std::vector<uint64_t> seeds(prompt_ids.size());
  for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = substream_seed(seed, i);
  return generate(prompt_ids, num_generations, seeds);
}

std::vector<Completion> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompt_ids,
                                                int num_generations, const std::vector<uint64_t>& prompt_seeds) {
  torch::InferenceMode inference_guard;
  // Sampling is an evaluation of the policy: MoE layers must not count these tokens in the load
  // statistics of training-mode forwards. The caller's mode is restored on exit.
  struct EvalGuard {
    model::Transformer& m;
    bool was_training;
    ~EvalGuard() { m->train(was_training); }
  } eval_guard{model_, model_->is_training()};
  model_->eval();
  const int64_t P = static_cast<int64_t>(prompt_ids.size());
  GRPO_REQUIRE(num_generations >= 1, "num_generations = ", num_generations,
               ": expected at least 1 completion per prompt");
  GRPO_REQUIRE(P >= 1, "generate: no prompts given");
  GRPO_REQUIRE(static_cast<int64_t>(prompt_seeds.size()) == P, "generate: ", prompt_seeds.size(), " prompt seeds for ", P,
               " prompts");
  const PromptPlan plan = plan_prompts(prompt_ids, params_.max_completion_length, model_->spec());
  const auto limits = SlotLimits::from(limits_.max_batch_size, limits_.kv_cache_budget_tokens, plan.capacity);
  stats_ = RolloutStats{};
  const auto t_start = Clock::now();

  // Re-packed only when the weights changed since the last call (once per training step).
  // Packing costs about three unpacked products of one row: worth it only when there are
  // several decode steps to amortise it over.
  const bool pack = params_.max_completion_length >= 4;
  const bool bf16 = bf16_active();
  // Under bf16 the head too (bf16 product, float32 logits, as the bf16 training head).
  if (!head_ || !head_->up_to_date() || head_->packed() != pack || head_->bf16() != bf16)
    head_ = std::make_unique<DecodeHead>(model_, limits_.max_batch_size, pack, bf16);
  // The layers' linears too (model::linear), under the same rule, in bf16 under bf16: with a
  // single-token forward, the bf16 packed linears are what keeps generation bound by AMX/AVX512-BF16
  // products instead of float32 ones.
  const torch::Dtype linear_dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
  if (packed_.dtype() != linear_dtype) packed_ = model::PackedWeights(linear_dtype);
  model::PackedWeights* packed = pack && model::PackedWeights::available() ? &packed_ : nullptr;
  model::PackedWeightsScope packed_scope(packed);

  const CompletionBuilder builder(params_, eos_ids_, *tok_, tool_exec_ != nullptr);
  const StepSampler sampler(params_, model_->spec().vocab_size, tok_->vocab_size());
  const RunContext ctx{model_,  *head_, builder, sampler, stats_, progress_, params_.repetition_penalty != 1.0,
                       bf16,    tools_, tool_exec_.get(), *tok_, force_, params_.temperature, packed, tool_side_prefill_};
  GenerateRun run(ctx, prompt_ids, num_generations, prompt_seeds, plan, limits);
  auto results = run.run();
  for (const auto& c : results) stats_.completion_tokens += c.completion_length;
  stats_.decode_seconds = seconds_since(t_start) - stats_.prefill_seconds;
  return results;
}

}  // namespace grpo::rollout
