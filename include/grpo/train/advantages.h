#pragma once
// Group-relative advantages (DeepSeekMath GRPO, eq. 3 of arXiv:2402.03300):
//   A_i = (R_i - mean_group(R)) / (std_group(R) + eps)
// computed exactly as TRL 1.16's GRPOTrainer._generate_and_score_completions does
// (trl/trainer/grpo_trainer.py, "sum_then_normalize" branch): the std is the unbiased (Bessel-corrected)
// one of trl.trainer.utils.nanstd, eps is added to the std (not inside a sqrt), and a NaN reward
// (an unscorable completion) is left out of its group's mean and std and gets advantage 0.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "grpo/config/grpo_config.h"

namespace grpo::train {

/// What compute_advantages returns.
struct AdvantageResult {
  torch::Tensor advantages;      // [N], float32, on the device of `rewards`
  torch::Tensor group_zero_std;  // [num_groups], bool: group g's (finite) rewards are all equal
  torch::Tensor group_index;     // [N], int64: dense group number 0..num_groups-1 of each completion
  double reward_mean = 0;        // mean of the finite rewards of the batch (TRL's "reward")
  double reward_std = 0;         // unbiased std of the finite rewards (TRL's "reward_std"); NaN for < 2
  double frac_zero_std = 0;      // fraction of completions in zero-std groups (TRL's frac_reward_zero_std)
  int64_t num_groups = 0;
};

/// Mean and unbiased (Bessel-corrected) std of the non-NaN values of a list, as
/// trl.trainer.utils.nanstd computes them. One definition for the advantages and the trainer's
/// metrics, so they agree to the last bit.
struct MeanStd {
  double mean = 0;    // NaN when count == 0
  double std = 0;     // sqrt(sum (x - mean)^2 / (count - 1)); NaN when count < 2
  int64_t count = 0;  // values that are not NaN
};

/// MeanStd of `v`: float64 sums in the order of `v`, NaN values skipped (an infinity is kept).
MeanStd nan_mean_std(const std::vector<double>& v);

/// Advantages of N completions. `rewards` [N], any floating dtype (NaN = unscorable); `prompt_index`
/// [N], integer: completions with the same value form one group (order in the batch does not matter,
/// groups may have different sizes). scale: GROUP divides by the group's std, BATCH by the std of the
/// whole batch, NONE does not divide (Dr. GRPO, arXiv:2503.20783). eps: TRL's 1e-4 (grpo.advantage_eps).
/// All arithmetic is float64. A group whose finite rewards are all equal gets exactly 0 (never NaN, and
/// never the rounding noise of a float mean divided by eps). Throws grpo::InputError when the shapes
/// differ, a tensor is not 1-D, or a group has a single completion (it has no baseline).
AdvantageResult compute_advantages(const torch::Tensor& rewards, const torch::Tensor& prompt_index,
                                   config::ScaleRewards scale, double eps = 1e-4);

/// DAPO dynamic sampling (arXiv:2503.14476, sec. 3.2): the prompt_index values whose groups have zero
/// reward variance (all finite rewards equal), ascending. Such groups give zero advantage, hence no
/// gradient, so the trainer drops them and draws more prompts. Same input rules as compute_advantages.
std::vector<int64_t> zero_variance_groups(const torch::Tensor& rewards, const torch::Tensor& prompt_index);

}  // namespace grpo::train
