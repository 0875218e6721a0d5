#pragma once
// Private to src/dist: the block runner that sharding `full` installs on the model.
#include "grpo/dist/sharding.h"

namespace grpo::dist {

/// Runs each decoder block with its parameters gathered only around its own computation. A
/// training forward (grad mode on, no KV cache) goes through an autograd Function whose forward
/// gathers, computes without a graph and frees, and whose backward gathers again, recomputes the
/// block with grad, back-propagates and reduce-scatters the weight gradients into the shard's
/// gradient. Anything else (generation, reference log-probs, evaluation) gathers, runs, frees.
model::TransformerImpl::BlockRunner make_sharded_block_runner(Sharder* sharder);

}  // namespace grpo::dist
