#pragma once
// Which groups a GRPO step trains on. A group is one prompt with its G scored completions. Without
// dynamic sampling a step trains on every group of one draw. With it (DAPO, arXiv:2503.14476 sec. 3.2)
// groups whose rewards are all equal (zero advantage, hence no gradient) are dropped and more draws
// follow; the step then trains on the first kept groups in draw order. The functions here are the
// bookkeeping of that choice; GrpoStage decides when to draw again (it needs the ranks to agree).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "grpo/data/dataset.h"
#include "grpo/reward/reward_set.h"
#include "grpo/rollout/completion.h"

namespace grpo::train {

/// One draw: B prompts of this rank, G completions each, scored.
struct Draw {
  std::vector<const data::Record*> records;      // [B]
  std::vector<std::vector<int64_t>> prompt_ids;  // [B]
  std::vector<std::string> prompt_texts;         // [B] rendered chat prompts
  std::vector<rollout::Completion> completions;  // [B * G], prompt_index in [0, B)
  reward::RewardSetResult scored;                // [B * G] rows, completion order
  std::vector<bool> keep;                        // [B] group g may be trained on
};

/// The groups a step trains on, gathered from its draws. B' groups, G completions each.
struct GroupBatch {
  std::vector<const data::Record*> records;      // [B']
  std::vector<std::vector<int64_t>> prompt_ids;  // [B']
  std::vector<std::string> prompt_texts;         // [B']
  std::vector<rollout::Completion> completions;  // [B' * G], prompt_index in [0, B')
  reward::RewardSetResult scored;                // [B' * G] rows, same order as completions
};

/// What compute_advantages and zero_variance_groups take, from scored completions.
struct RewardTensors {
  torch::Tensor rewards;       // [N] float64: scored.total, NaN where scored.masked (left out of the group stats)
  torch::Tensor prompt_index;  // [N] int64: completions[i].prompt_index
};

/// Row i of `scored` belongs to completions[i]. Throws grpo::InputError when the sizes differ.
RewardTensors reward_tensors(const reward::RewardSetResult& scored, const std::vector<rollout::Completion>& completions);

/// Dynamic sampling: clears d.keep[g] for every group g of `d` whose finite rewards are all equal
/// (zero_variance_groups) and returns how many it cleared. d.keep must be [B] already.
int64_t drop_zero_variance_groups(Draw& d);

/// Moves the first `take` groups with keep set out of `draws`, in draw order and, within a draw, in
/// group order. Each group's completions keep their order within the draw and get prompt_index
/// renumbered to the group's place in the batch; their score rows follow them (problems re-numbered).
/// Counters are summed over every draw (they count work done, kept or not). Fewer than `take` groups
/// are returned when fewer are kept.
GroupBatch gather_kept_groups(std::vector<Draw>& draws, int64_t take);

}  // namespace grpo::train
