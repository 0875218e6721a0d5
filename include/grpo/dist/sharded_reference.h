#pragma once
// The frozen reference model (grpo.beta > 0 or grpo.log_kl) under distributed.sharding full:
// sharded like the policy, so that no rank holds a whole second copy of the decoder blocks.
//
// Each decoder block's weights live on this rank only as its 1/world slice of a flat buffer laid
// out exactly as the policy's block unit (same entries, offsets and padding: rank r holds
// [r*S, (r+1)*S)). The reference only ever runs forwards without grad: a block is all-gathered
// (the next one prefetched when distributed.forward_prefetch), run, and freed at once (FSDP's
// reshard_after_forward). No gradients, no optimizer state. The parameters outside the blocks
// (embedding, final norm, untied head) and the buffers stay whole on every rank, as the policy's
// do under full. The gather is in the masters' dtype (float32), not bf16 under trainer.bf16: the
// reference's log-probs then equal those of a replicated reference.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "grpo/dist/distributed.h"
#include "grpo/dist/sharding.h"
#include "grpo/model/transformer.h"

namespace grpo::dist {

class ShardedReference {
 public:
  /// Builds the reference from `policy`'s current weights: its block slices from `sharder`'s
  /// local shards (never whole on this rank), the rest copied from `policy_model`. The model is
  /// built on the CPU, its blocks emptied there, then moved to the policy's device and dtype.
  /// Collective only in its forwards. Requires a sharder with block units (sharding full).
  ShardedReference(std::shared_ptr<Distributed> dist, const Sharder& sharder, model::Transformer& policy_model);
  ~ShardedReference();
  ShardedReference(const ShardedReference&) = delete;
  ShardedReference& operator=(const ShardedReference&) = delete;

  /// The frozen model (requires_grad off, eval mode); its blocks gather themselves in forward.
  model::Transformer& model() { return model_; }
  /// grpo.ref_model_sync_steps: copies the policy's current weights (local slices and the whole
  /// non-block parameters and buffers); no communication.
  void sync_from(const Sharder& sharder, model::Transformer& policy_model);

  /// Bytes of the reference's tensors resident on this rank now (parameters, buffers, slices,
  /// gather buffers; each storage once), and the largest value seen during forwards.
  int64_t held_bytes() const;
  int64_t peak_held_bytes() const { return peak_bytes_; }
  int64_t gathers() const { return gathers_; }

 private:
  struct Block;
  void materialize(Block& b);
  void prefetch(Block& b);
  void release(Block& b);
  void copy_rest(model::Transformer& policy_model);

  std::shared_ptr<Distributed> dist_;
  model::Transformer model_{nullptr};
  std::vector<std::unique_ptr<Block>> blocks_;  // one per decoder layer (null: nothing to shard)
  bool prefetch_ = true;
  int64_t peak_bytes_ = 0, gathers_ = 0;
};

}  // namespace grpo::dist
