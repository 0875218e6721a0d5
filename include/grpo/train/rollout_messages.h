#pragma once
// The reply a dedicated rollout rank sends its trainer (distributed.rollout_ranks, issue 22; not
// wired into training yet): the completions it sampled and their rewards, as bytes for
// dist::send_bytes. CBOR (nlohmann): float32 values (log-probs, rewards) round-trip bit for bit,
// non-finite ones included, which JSON text would turn into null.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/reward/reward_set.h"
#include "grpo/rollout/completion.h"

namespace grpo::train {

struct RolloutReply {
  int64_t policy_version = 0;  // optimizer steps of the weights that sampled the completions
  std::vector<rollout::Completion> completions;
  reward::RewardSetResult scored;  // rows in completion order
};

std::string encode_rollout_reply(const RolloutReply& r);
/// Throws grpo::Error on bytes that are not an encoded reply.
RolloutReply decode_rollout_reply(const std::string& bytes);

}  // namespace grpo::train
