#include "grpo/rollout/engine.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "bf16_forward.h"
#include "completion_builder.h"
#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/sampling.h"
#include "grpo/rollout/slot_scheduler.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"
#include "prefill.h"
#include "step_sampler.h"

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
};

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
      const bool admitted = admit();
      compact();
      if (c_.progress) c_.progress(n_finished_, static_cast<int64_t>(results_.size()));
      if (seqs_.empty()) {
        if (sched_.queue().empty()) break;
        GRPO_CHECK(admitted, "scheduler made no progress");
        continue;
      }
      decode_step();
    }
    return std::move(results_);
  }

 private:
  bool admit();
  void install(Prefill& pf, const Placement& placement, std::vector<Sequence>& seqs, const std::vector<int64_t>& rows,
               const std::vector<int64_t>& tokens);
  void compact();
  void decode_step();

  // Appends a drawn token to the completion `out`; counts it when that finishes it.
  bool append(int64_t out, Sequence& s, int64_t token, float logprob) {
    const bool done = c_.builder.append(results_[out], s, token, logprob);
    n_finished_ += done;
    return done;
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
  const StepDraws draws = c_.sampler(pf.logits, pf.seen, streams, counters);
  // New rows that survive their first token go on slots.
  std::vector<int64_t> survivors, rows, tokens;  // completion index, new row, pending token
  std::vector<Sequence> seqs;
  for (size_t k = 0; k < outs.size(); ++k) {
    Sequence s = c_.builder.start(plan_.max_new[chunks[pf.chunk_of[k]].prompt], streams[k]);
    if (append(outs[k], s, draws.ids[k], draws.logprobs[k])) continue;
    survivors.push_back(outs[k]);
    rows.push_back(static_cast<int64_t>(k));
    tokens.push_back(draws.ids[k]);
    seqs.push_back(std::move(s));
  }
  install(pf, sched_.place(survivors), seqs, rows, tokens);
  return true;
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
  if (c_.penalty) seen_.scatter_(1, step_ids, true);
  auto out = rollout_forward(model_, step_ids, {}, &*cache_, c_.bf16);
  auto logits = c_.head(out.hidden.select(1, 0));  // [B, V] float32 (the head runs outside autocast)
  std::vector<uint64_t> streams(static_cast<size_t>(B)), counters(static_cast<size_t>(B));
  for (int64_t s = 0; s < B; ++s) {
    streams[s] = seqs_[s].stream;
    counters[s] = results_[sched_.seq(s)].token_ids.size();  // tokens drawn so far
  }
  const StepDraws draws = c_.sampler(logits, seen_, streams, counters);
  for (int64_t s = 0; s < B; ++s) {
    if (append(sched_.seq(s), seqs_[s], draws.ids[s], draws.logprobs[s]))
      sched_.finish(s);
    else
      pending_[s] = draws.ids[s];
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
                    EngineLimits{cfg.max_batch_size, cfg.kv_cache_budget_tokens}) {}

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
  if (!head_ || !head_->up_to_date() || head_->packed() != pack)
    head_ = std::make_unique<DecodeHead>(model_, limits_.max_batch_size, pack);
  // The layers' linears too (model::linear), under the same rule, in bf16 under bf16: with a
  // single-token forward, the bf16 packed linears are what keeps generation bound by AMX/AVX512-BF16
  // products instead of float32 ones.
  const bool bf16 = bf16_active();
  const torch::Dtype linear_dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
  if (packed_.dtype() != linear_dtype) packed_ = model::PackedWeights(linear_dtype);
  model::PackedWeightsScope packed_scope(pack && model::PackedWeights::available() ? &packed_ : nullptr);

  const CompletionBuilder builder(params_, eos_ids_, *tok_);
  const StepSampler sampler(params_, model_->spec().vocab_size, tok_->vocab_size());
  const RunContext ctx{model_, *head_, builder, sampler, stats_, progress_, params_.repetition_penalty != 1.0, bf16};
  GenerateRun run(ctx, prompt_ids, num_generations, prompt_seeds, plan, limits);
  auto results = run.run();
  for (const auto& c : results) stats_.completion_tokens += c.completion_length;
  stats_.decode_seconds = seconds_since(t_start) - stats_.prefill_seconds;
  return results;
}

}  // namespace grpo::rollout
