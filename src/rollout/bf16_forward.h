#pragma once
// Internal to the rollout engine (not a public header): trainer.bf16 on the CPU, as the engine
// runs it.
//
// Why autocast and not a bf16 copy of the model: the trainer recomputes the old log-probs with the
// transformer forward under bf16 autocast and the head and log-softmax in float32. The rollout runs
// the same forward under the same CPU autocast, so its sampled-token log-probs come from the same
// arithmetic: linears and attention in bf16 (float32 accumulation, bf16 results), RMSNorm, the
// residual stream and the head in float32. Only the summation order of the products differs (the
// linears take oneDNN's bf16 packed path, model::PackedWeights(kBFloat16), a decode step sees one
// row where training sees the whole sequence: attention rounds differently there). The KV cache holds bf16: SDPA under autocast reads
// k and v as bf16 anyway, so a float32 cache would only double the bytes read per step.
#include <torch/torch.h>

#include "grpo/model/kv_cache.h"
#include "grpo/model/transformer.h"

namespace grpo::rollout {

/// model->forward(ids, mask, cache), under model::Bf16Autocast(bf16, model's device) (the trainer's scope). ids [B, T] int64, mask [B, T]
/// or undefined; hidden [B, T, D] float32 either way (the final norm keeps the model's dtype).
model::ForwardOutput rollout_forward(model::Transformer& model, const torch::Tensor& ids, const torch::Tensor& mask,
                                     model::KVCache* cache, bool bf16);

/// The dtype of the rollout's KV cache: bf16 under bf16, else the model's.
torch::Dtype rollout_cache_dtype(const model::Transformer& model, bool bf16);

}  // namespace grpo::rollout
