#pragma once
// Activation (gradient) checkpointing of one decoder block, as PyTorch's reentrant
// torch.utils.checkpoint does it: the forward runs the block without building a graph and keeps
// only its inputs; backward runs the block again with grad enabled and back-propagates through
// that recomputation (parameter gradients accumulate into .grad as usual). Trades one extra block
// forward in backward for not storing the block's intermediate activations.
// Transformer::set_gradient_checkpointing switches it on; the block's math is unchanged.
#include <torch/torch.h>

#include <optional>
#include <utility>

#include "grpo/model/block.h"

namespace grpo::model {

/// Block::forward without a KV cache, checkpointed. x: [B, T, D] (must require grad, else use the
/// plain forward: the recomputation only reaches the parameters through the graph of x);
/// cos/sin/mask/valid as in Block::forward. Returns what Block::forward returns; for a MoE block
/// stats->aux_probs stays differentiable (the aux loss trains the router through it), the other
/// stats are constants. The recomputation in backward does not count the MoE load twice
/// (the block's pending expert load is restored after it). `block` must outlive the backward.
std::pair<torch::Tensor, std::optional<MoeStats>> checkpointed_block_forward(BlockImpl& block, const torch::Tensor& x,
                                                                             const torch::Tensor& cos,
                                                                             const torch::Tensor& sin,
                                                                             const torch::Tensor& mask,
                                                                             const torch::Tensor& valid);

}  // namespace grpo::model
