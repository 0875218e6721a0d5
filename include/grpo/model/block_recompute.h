#pragma once
// Recomputing a decoder block in backward, the part shared by activation checkpointing
// (model/checkpointed_block.cpp) and sharding `full` (dist/sharded_block.cpp): both run the block
// forward without a graph and, in their autograd Function's backward, run it again with grad on
// and differentiate that recomputation. What differs (where the parameter gradients go) stays
// with them.
#include <torch/torch.h>

#include <vector>

#include "grpo/model/block.h"

namespace grpo::model {

/// The autocast state of CPU and CUDA: the recomputation must run in the precision of the forward
/// (backward runs after the trainer's autocast scope has ended), as torch.utils.checkpoint does.
struct AutocastState {
  bool enabled[2];
  at::ScalarType dtype[2];
  static AutocastState current();
  void apply() const;
  /// Kept in (read back from) the graph node's saved_data, under keys "ac_on<i>", "ac_dtype<i>".
  void save(torch::autograd::AutogradContext* ctx) const;
  static AutocastState load(torch::autograd::AutogradContext* ctx);
};

/// The recomputed outputs to differentiate and their incoming gradients, pairwise: y with the
/// gradient of y (zeros when none came), and for a MoE block aux_probs with its gradient when both
/// exist (the aux loss trains the router through it).
struct RecomputedBlock {
  std::vector<torch::Tensor> outputs, grads;
};

/// Runs block.forward(x, cos, sin, mask, no cache, valid) again with grad mode on under `autocast`
/// (the forward's state; the caller's is restored after, and the weight casts made for it are
/// dropped: they would be stale after the optimizer step). The MoE expert load the recomputation
/// adds is taken back, so it is counted once. `grads`: the gradients backward received for the
/// forward's outputs, {y} or {y, load, aux_tokens, aux_probs, valid_tokens}. x: [B, T, D], a
/// detached copy of the saved input that requires grad where its gradient is wanted.
RecomputedBlock recompute_block(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& valid,
                                const AutocastState& autocast, const torch::autograd::variable_list& grads);

}  // namespace grpo::model
