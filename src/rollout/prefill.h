#pragma once
// Internal to the rollout engine (not a public header): the prefill of admitted prompts.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "grpo/model/kv_cache.h"
#include "grpo/model/transformer.h"
#include "grpo/rollout/decode_head.h"
#include "grpo/rollout/slot_scheduler.h"

namespace grpo::rollout {

/// The prompts of some admitted chunks, run through the model once each, and the next-token
/// logits of every completion the chunks admit (n = sum of the chunks' counts).
struct Prefill {
  model::KVCache cache;          // [A] rows, row a = chunk a's prompt, of the capacity asked for
  torch::Tensor logits;          // [n, V]: row k = the logits after new completion k's prompt
  torch::Tensor seen;            // [n, V] bool: the prompt's tokens; undefined unless asked for
  std::vector<int64_t> chunk_of; // [n]: new completion k's chunk (its row of `cache`)
  int64_t prompt_tokens = 0;     // tokens prefilled
};

/// Prefills chunks[a]'s prompt into row a of a new cache of `capacity` tokens per row: ids
/// RIGHT-padded to the longest prompt with its first token (harmless under the mask, and the
/// repetition penalty's "seen" set can then be scattered from the whole row). Completions of a
/// chunk are in chunk order, then completion order. with_seen: also fill Prefill::seen. bf16: the
/// forward runs as rollout_forward(..., bf16) and the cache holds bf16 (bf16_forward.h).
Prefill prefill_chunks(model::Transformer model, const DecodeHead& head,
                       const std::vector<std::vector<int64_t>>& prompt_ids, const std::vector<Chunk>& chunks,
                       int64_t capacity, bool with_seen, bool bf16 = false);

}  // namespace grpo::rollout
