#pragma once
// trainer.bf16 for the training forwards: the model layer's bf16 autocast scope (CUDA and CPU),
// grpo/model/bf16_autocast.h, under the name the train layer has always used; and the frozen
// reference model's bf16 weights on the CPU.
#include "grpo/model/bf16_autocast.h"
#include "grpo/model/transformer.h"

namespace grpo::train {

using model::Bf16Autocast;

/// CPU trainer.bf16, frozen reference model: rounds the weights and biases of its attention and dense
/// MLP linears (q/k/v/o, gate/up/down) to bf16 in place, once. Autocast rounds exactly these to bf16
/// on every forward (it caches only leaf tensors that require grad, which a frozen model's are not):
/// the same values, without the cast of ~80% of the parameters per step, and half their memory.
/// A re-sync (copy_weights) rounds the policy's new weights the same way. Linears with a LoRA adapter
/// or a non-plain implementation (FP8) and MoE experts stay as they are. Returns the number of
/// tensors converted: 0 unless `bf16` and the model is on the CPU.
int64_t bf16_frozen_linears(model::Transformer& frozen, bool bf16);

}  // namespace grpo::train
