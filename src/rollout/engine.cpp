#include "grpo/rollout/engine.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <tuple>

#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/incremental_decoder.h"
#include "grpo/rollout/sampling.h"
#include "grpo/rollout/stop_matcher.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"

namespace grpo::rollout {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One live completion, in the cache row of the same index.
struct Row {
  int64_t out = -1;  // index into the results; -1: the row finished and its slot is free
  int64_t max_new = 0;
  uint64_t stream = 0;  // this completion's random stream (substream_seed of its prompt's seed, j)
  std::unique_ptr<IncrementalDecoder> dec;  // only when stop strings are configured
};

// A contiguous run of completions of one prompt admitted together.
struct Chunk {
  int64_t prompt;
  int64_t first;  // completion index j of the first one
  int64_t count;
};

bool contains(const std::vector<int64_t>& sorted, int64_t x) { return std::binary_search(sorted.begin(), sorted.end(), x); }

}  // namespace

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
  const auto& spec = model_->spec();
  const int64_t P = static_cast<int64_t>(prompt_ids.size());
  const int64_t G = num_generations;
  const int64_t V = spec.vocab_size;
  const int64_t ctx = spec.max_position_embeddings;
  GRPO_REQUIRE(G >= 1, "num_generations = ", G, ": expected at least 1 completion per prompt");
  GRPO_REQUIRE(P >= 1, "generate: no prompts given");
  GRPO_REQUIRE(static_cast<int64_t>(prompt_seeds.size()) == P, "generate: ", prompt_seeds.size(), " prompt seeds for ", P,
               " prompts");

  // ---- validate prompts, per-prompt length limits, cache capacity ----
  std::vector<int64_t> max_new(P);
  int64_t capacity = 0;
  for (int64_t i = 0; i < P; ++i) {
    const auto& p = prompt_ids[i];
    const int64_t L = static_cast<int64_t>(p.size());
    GRPO_REQUIRE(L >= 1, "prompt ", i, " is empty: a prompt needs at least one token");
    GRPO_REQUIRE(L < ctx, "prompt ", i, " has ", L, " tokens but the model's context is ", ctx,
                 " tokens (max_position_embeddings), which leaves no room for a completion");
    for (size_t t = 0; t < p.size(); ++t)
      GRPO_REQUIRE(p[t] >= 0 && p[t] < V, "prompt ", i, " token ", t, " is id ", p[t],
                   ", outside the model's vocabulary [0, ", V, ")");
    max_new[i] = std::min<int64_t>(params_.max_completion_length, ctx - L);
    capacity = std::max(capacity, L + max_new[i]);
  }
  int64_t row_limit = limits_.max_batch_size;  // rows decoded at once
  int64_t budget_rows = std::numeric_limits<int64_t>::max();  // cache rows held at once, prefill rows included
  if (limits_.kv_cache_budget_tokens > 0) {
    budget_rows = limits_.kv_cache_budget_tokens / capacity;
    GRPO_REQUIRE(budget_rows >= 2, "rollout.kv_cache_budget_tokens = ", limits_.kv_cache_budget_tokens,
                 " is too small: each cache row holds ", capacity,
                 " tokens (longest prompt + max_completion_length) and a prompt needs two rows (its prefill and "
                 "one completion); raise it to at least ",
                 2 * capacity);
    row_limit = std::min(row_limit, budget_rows - 1);
  }

  const auto device = model_->device();
  const bool penalty = params_.repetition_penalty != 1.0;
  const bool stops = !params_.stop.empty();
  const double T = params_.temperature;
  const int64_t tok_vocab = tok_->vocab_size();
  StopMatcher matcher(params_.stop);
  stats_ = RolloutStats{};
  const auto t_start = Clock::now();

  std::vector<Completion> results(P * G);
  for (int64_t i = 0; i < P; ++i)
    for (int64_t j = 0; j < G; ++j) {
      results[i * G + j].prompt_index = i;
      results[i * G + j].prompt_length = static_cast<int>(prompt_ids[i].size());
    }
  int64_t n_finished = 0;

  // Prompts are admitted in order; a group larger than a batch goes in chunks of row_limit.
  std::deque<Chunk> queue;
  for (int64_t i = 0; i < P; ++i)
    for (int64_t j = 0; j < G; j += row_limit) queue.push_back({i, j, std::min(row_limit, G - j)});

  // Re-packed only when the weights changed since the last call (once per training step).
  // Packing costs about three unpacked products of one row: worth it only when there are
  // several decode steps to amortise it over.
  const bool pack = params_.max_completion_length >= 4;
  if (!head_ || !head_->up_to_date() || head_->packed() != pack)
    head_ = std::make_unique<DecodeHead>(model_, limits_.max_batch_size, pack);
  const DecodeHead& head = *head_;
  // The layers' linears too (model::linear), under the same rule.
  model::PackedWeightsScope packed_scope(pack && model::PackedWeights::available() ? &packed_ : nullptr);
  std::optional<model::KVCache> cache;  // row s <-> rows[s]
  std::vector<Row> rows;
  std::vector<int64_t> pending;  // per row: the sampled token not yet fed to the model
  torch::Tensor seen;            // [rows, V] bool, only with a repetition penalty

  auto decode_text = [&](std::span<const int64_t> ids) {
    std::vector<int32_t> v(ids.begin(), ids.end());
    return tok_->decode(v, /*skip_special=*/true);
  };

  // Appends one sampled token to row r; returns true when the completion is finished.
  auto append = [&](Row& r, int64_t token, float logprob) {
    Completion& c = results[r.out];
    c.token_ids.push_back(token);
    c.logprobs.push_back(logprob);
    std::optional<FinishReason> reason;
    if (!params_.ignore_eos && contains(eos_ids_, token)) {
      reason = FinishReason::EOS;
    } else if (contains(params_.stop_token_ids, token)) {
      reason = FinishReason::STOP_TOKEN;
    } else if (stops && token < tok_vocab) {
      const size_t old = r.dec->text().size();
      r.dec->push(token);
      const int64_t at = matcher.find(r.dec->text(), old);
      if (at >= 0) {
        // Keep the tokens whose text lies entirely before the stop string (see docs/rollout.md).
        size_t keep = 0;
        while (keep < r.dec->emitted_tokens() && r.dec->token_end(keep) <= at) ++keep;
        c.token_ids.resize(keep);
        c.logprobs.resize(keep);
        c.text = r.dec->text().substr(0, at);
        reason = FinishReason::STOP_STRING;
      }
    }
    if (!reason && static_cast<int64_t>(c.token_ids.size()) >= r.max_new) reason = FinishReason::LENGTH;
    if (!reason) return false;
    c.finish_reason = *reason;
    if (*reason != FinishReason::STOP_STRING) {
      std::span<const int64_t> ids(c.token_ids);
      if (*reason != FinishReason::LENGTH) ids = ids.first(ids.size() - 1);  // the ending token is not text
      c.text = decode_text(ids);
    }
    c.completion_length = static_cast<int>(c.token_ids.size());
    r.out = -1;
    r.dec.reset();
    ++n_finished;
    return true;
  };

  // Samples one token per row from `logits` ([n, V]); returns host copies of the ids and logprobs.
  // Row n's uniform is draw (streams[n], counters[n]): its completion's stream at its token
  // position, so a completion's tokens do not depend on which rows share the batch (a prompt
  // samples the same completions alone, in another batch, or on another rank).
  // Sampling from logits / T unchanged: no penalty, no filter, no padded ids cut off.
  const bool unfiltered = !penalty && (params_.top_k <= 0 || params_.top_k >= V) && params_.top_p >= 1.0 &&
                          params_.min_p <= 0.0 && tok_vocab >= V;
  auto sample = [&](const torch::Tensor& logits, const torch::Tensor& row_seen, const std::vector<uint64_t>& streams,
                    const std::vector<uint64_t>& counters) {
    auto processed = process_logits(logits, params_, row_seen);
    // Ids past the tokenizer's vocabulary (padded embedding matrices) are never drawn.
    if (tok_vocab < V) processed = processed.narrow(-1, 0, tok_vocab);
    torch::Tensor ids, lps;
    if (T == 0.0) {
      ids = processed.argmax(-1);
    } else {
      auto u = torch::empty({static_cast<int64_t>(streams.size())}, torch::kFloat32);
      auto* up = u.data_ptr<float>();
      for (size_t n = 0; n < streams.size(); ++n) up[n] = counter_uniform(streams[n], counters[n]);
      torch::Tensor lse;
      std::tie(ids, lse) = draw_tokens_with_lse(processed, u);
      // processed is logits / T itself: the draw's logsumexp gives the logprob for free.
      if (unfiltered) lps = processed.gather(-1, ids.view({-1, 1})).squeeze(-1) - lse;
    }
    if (!lps.defined()) lps = token_logprobs(logits, ids, T);
    // One device->host copy per step: the host needs the ids for EOS/stop decisions and the output.
    auto host = torch::stack({ids.to(torch::kFloat64), lps.to(torch::kFloat64)}).cpu();
    return std::make_pair(ids, host);
  };

  while (true) {
    // ---- admission: refill free slots (and grow the batch) from the queue ----
    int64_t live = 0;
    for (const auto& r : rows) live += r.out >= 0;
    const int64_t held = static_cast<int64_t>(rows.size());
    std::vector<Chunk> admit;
    int64_t n_new = 0;
    while (!queue.empty()) {
      const Chunk& ch = queue.front();
      const int64_t n_prefill = static_cast<int64_t>(admit.size()) + 1;
      const bool fits_batch = live + n_new + ch.count <= row_limit;
      const bool fits_budget = std::max(held, live + n_new + ch.count) + n_prefill <= budget_rows;
      if (!fits_batch || !fits_budget) break;
      admit.push_back(ch);
      n_new += ch.count;
      queue.pop_front();
    }
    if (!admit.empty()) {
      const auto t0 = Clock::now();
      const int64_t A = static_cast<int64_t>(admit.size());
      int64_t tmax = 0;
      for (const auto& ch : admit) tmax = std::max<int64_t>(tmax, prompt_ids[ch.prompt].size());
      auto ids = torch::zeros({A, tmax}, torch::kInt64);
      auto mask = torch::zeros({A, tmax}, torch::kInt64);
      auto last = torch::zeros({A}, torch::kInt64);
      for (int64_t a = 0; a < A; ++a) {
        const auto& p = prompt_ids[admit[a].prompt];
        const int64_t L = static_cast<int64_t>(p.size());
        // Padding repeats the first token: harmless under the mask, and the repetition penalty's
        // "seen" set can then be scattered from the whole row.
        ids[a].fill_(p[0]);
        ids[a].narrow(0, 0, L).copy_(torch::tensor(p, torch::kInt64));
        mask[a].narrow(0, 0, L).fill_(1);
        last[a] = L - 1;
        stats_.prompt_tokens += L;
      }
      ids = ids.to(device);
      model::KVCache pc = model_->make_cache(A, capacity);
      auto out = model_->forward(ids, mask.to(device), &pc);
      auto h = out.hidden.index({torch::arange(A, torch::TensorOptions().device(device)), last.to(device)});
      auto logits_p = head(h);  // [A, V]
      // Expand to one row per new completion.
      std::vector<int64_t> src;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t k = 0; k < admit[a].count; ++k) src.push_back(a);
      auto src_t = torch::tensor(src, torch::kInt64).to(device);
      auto logits_new = logits_p.index_select(0, src_t);
      torch::Tensor seen_new;
      if (penalty) {
        auto seen_p = torch::zeros({A, V}, torch::TensorOptions().dtype(torch::kBool).device(device));
        seen_p.scatter_(1, ids, true);
        seen_new = seen_p.index_select(0, src_t);
      }
      stats_.prefill_seconds += seconds_since(t0);
      std::vector<uint64_t> streams, counters;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t c = 0; c < admit[a].count; ++c) {
          streams.push_back(substream_seed(prompt_seeds[admit[a].prompt], static_cast<uint64_t>(admit[a].first + c)));
          counters.push_back(0);
        }
      auto [tok_dev, host] = sample(logits_new, seen_new, streams, counters);
      auto tok_acc = host.accessor<double, 2>();
      // New rows that survive their first token take free slots, then extend the batch.
      std::vector<int64_t> free_slots;
      for (int64_t s = 0; s < held; ++s)
        if (rows[s].out < 0) free_slots.push_back(s);
      std::vector<std::pair<int64_t, int64_t>> placed;  // (slot, row of pc)
      std::vector<int64_t> placed_new;                  // index into the new rows
      size_t next_free = 0;
      int64_t grow = 0;
      int64_t k = 0;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t c = 0; c < admit[a].count; ++c, ++k) {
          Row r;
          r.out = admit[a].prompt * G + admit[a].first + c;
          r.max_new = max_new[admit[a].prompt];
          r.stream = streams[static_cast<size_t>(k)];
          if (stops) r.dec = std::make_unique<IncrementalDecoder>(*tok_);
          const int64_t token = static_cast<int64_t>(tok_acc[0][k]);
          if (append(r, token, static_cast<float>(tok_acc[1][k]))) continue;
          int64_t slot;
          if (next_free < free_slots.size()) {
            slot = free_slots[next_free++];
          } else {
            slot = held + grow++;
            rows.emplace_back();
            pending.push_back(0);
          }
          rows[slot] = std::move(r);
          pending[slot] = token;
          placed.emplace_back(slot, a);
          placed_new.push_back(k);
        }
      if (!cache && !placed.empty()) {
        // First admission: the prefill cache itself becomes the batch.
        std::vector<int64_t> idx(placed.size());
        for (size_t q = 0; q < placed.size(); ++q) idx[placed[q].first] = placed[q].second;
        pc.select_rows(torch::tensor(idx, torch::kInt64));
        cache.emplace(std::move(pc));
        if (penalty) seen = seen_new.index_select(0, torch::tensor(placed_new, torch::kInt64).to(device));
      } else if (cache) {
        if (grow > 0) {
          auto idx = torch::cat({torch::arange(held, torch::kInt64), torch::zeros({grow}, torch::kInt64)});
          cache->select_rows(idx);
          if (penalty) seen = seen.index_select(0, idx.to(device));
        }
        for (size_t q = 0; q < placed.size(); ++q) {
          cache->copy_row(placed[q].first, pc, placed[q].second);
          if (penalty) seen[placed[q].first].copy_(seen_new[placed_new[q]]);
        }
      }
    }
    // ---- compaction: finished rows whose slots were not refilled leave the batch ----
    std::vector<int64_t> keep;
    for (int64_t s = 0; s < static_cast<int64_t>(rows.size()); ++s)
      if (rows[s].out >= 0) keep.push_back(s);
    if (keep.size() < rows.size()) {
      if (keep.empty()) {
        cache.reset();
        seen = torch::Tensor();
        rows.clear();
        pending.clear();
      } else {
        auto idx = torch::tensor(keep, torch::kInt64);
        cache->select_rows(idx);
        if (penalty) seen = seen.index_select(0, idx.to(device));
        std::vector<Row> rows2;
        std::vector<int64_t> pending2;
        for (int64_t s : keep) {
          rows2.push_back(std::move(rows[s]));
          pending2.push_back(pending[s]);
        }
        rows = std::move(rows2);
        pending = std::move(pending2);
      }
    }
    if (progress_) progress_(n_finished, P * G);
    if (rows.empty()) {
      if (queue.empty()) break;
      GRPO_CHECK(!admit.empty(), "scheduler made no progress");
      continue;
    }

    // ---- one decode step for every live row ----
    const int64_t B = static_cast<int64_t>(rows.size());
    stats_.peak_batch = std::max(stats_.peak_batch, B);
    stats_.peak_cache_tokens = std::max(stats_.peak_cache_tokens, cache->batch() * capacity);
    auto step_ids = torch::tensor(pending, torch::kInt64).to(device).view({B, 1});
    if (penalty) seen.scatter_(1, step_ids, true);
    auto out = model_->forward(step_ids, {}, &*cache);
    auto logits = head(out.hidden.select(1, 0));  // [B, V]
    std::vector<uint64_t> streams(static_cast<size_t>(B)), counters(static_cast<size_t>(B));
    for (int64_t s = 0; s < B; ++s) {
      streams[s] = rows[s].stream;
      counters[s] = results[rows[s].out].token_ids.size();  // tokens drawn so far
    }
    auto [tok_dev, host] = sample(logits, seen, streams, counters);
    auto acc = host.accessor<double, 2>();
    for (int64_t s = 0; s < B; ++s) {
      const int64_t token = static_cast<int64_t>(acc[0][s]);
      if (!append(rows[s], token, static_cast<float>(acc[1][s]))) pending[s] = token;
    }
    ++stats_.decode_steps;
    stats_.decoded_rows += B;
  }
  for (const auto& c : results) stats_.completion_tokens += c.completion_length;
  stats_.decode_seconds = seconds_since(t_start) - stats_.prefill_seconds;
  return results;
}

}  // namespace grpo::rollout
