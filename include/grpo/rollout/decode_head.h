#pragma once
// The language-model head for sampling: logits of a few rows at a time against a packed weight.
//
// Why: a decode step multiplies [rows, D] hidden states by the [V, D] head weight. For small rows
// MKL's sgemm re-packs the whole weight on every call (V*D floats: 50 MB for SmolLM2's vocabulary
// at D = 256), which perf showed as 53% of a batch-16 decode step. oneDNN's linear with a weight
// packed once per generate() call (the ops PyTorch's inductor uses on CPU:
// mkldnn::_reorder_linear_weight and mkldnn::_linear_pointwise) does the same product 3-4x faster
// at 1-64 rows (bench/rollout_vs_transformers.py; docs/rollout.md).
#include <torch/torch.h>

#include <cstdint>

#include "grpo/model/transformer.h"

namespace grpo::rollout {

class DecodeHead {
 public:
  /// Packs the head weight of `model` (lm_head, or the tied embedding) for products of up to
  /// `max_rows` rows, when the packed path applies: weight float32 on the CPU, LibTorch built with
  /// oneDNN (at::hasMKLDNN()), its ops registered, allow_packing, and GRPO_PACKED_LM_HEAD
  /// not set to 0. Otherwise
  /// calls model->logits(). The packed copy is taken now: build a new DecodeHead when up_to_date()
  /// turns false. Memory: one more copy of the head weight
  /// (V * D * 4 bytes) while it lives. Throws nothing of its own.
  /// `bf16` (the engine's bf16_active(), float32 weights only): the product runs on bf16 copies
  /// (packed as such: half the bytes), as the bf16 training head does.
  DecodeHead(model::Transformer model, int64_t max_rows, bool allow_packing = true, bool bf16 = false);

  /// hidden: [N, D] in the model's dtype and device -> logits [N, V] (float32 on the packed path;
  /// equal to model->logits(hidden) up to float32 summation order, |diff| ~ 1e-6 relative).
  /// Under bf16: float32 logits [N, V] = (bf16(hidden) @ bf16(W)^T, summed in float32, rounded to
  /// bf16), on either path: torch.autocast's bf16 lm_head followed by HF's .float() of the logits.
  torch::Tensor operator()(const torch::Tensor& hidden) const;

  /// Whether the head computes in bf16.
  bool bf16() const { return bf16_; }

  /// Whether the packed oneDNN path is in use.
  bool packed() const { return packed_.defined(); }

  /// False once the head weight was changed in place (an optimizer step, a weight load: its
  /// version counter moved) or replaced since the packing; always false for inference tensors,
  /// whose changes are not counted. The engine re-packs only then, once per training step.
  bool up_to_date() const;

 private:
  mutable model::Transformer model_;  // logits() is not const in torch::nn
  torch::Tensor packed_;  // oneDNN-packed weight, undefined when not in use
  torch::Tensor bias_;    // lm_head bias (bf16 under bf16), undefined when none
  torch::Tensor weight_bf16_;  // bf16 head weight for the unpacked bf16 path, else undefined
  const void* weight_impl_ = nullptr;  // the weight packed, and its version counter then
  int64_t weight_version_ = -1;
  bool bf16_ = false;  // products on bf16 copies (see the constructor)
};

}  // namespace grpo::rollout
