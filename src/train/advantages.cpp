#include "grpo/train/advantages.h"

#include <cmath>
#include <limits>
#include <map>

#include "grpo/util/error.h"

namespace grpo::train {
namespace {

struct Groups {
  std::vector<double> r;          // rewards, float64
  std::vector<int64_t> g;         // dense group of each completion
  std::vector<int64_t> keys;      // prompt_index value of each dense group (ascending)
  std::vector<std::vector<int64_t>> members;
};

Groups group(const torch::Tensor& rewards, const torch::Tensor& prompt_index) {
  GRPO_REQUIRE(rewards.defined() && prompt_index.defined(), "advantages: rewards and prompt_index must be given");
  GRPO_REQUIRE(rewards.dim() == 1, "advantages: rewards must be 1-D [N], got ", rewards.sizes());
  GRPO_REQUIRE(prompt_index.dim() == 1 && prompt_index.size(0) == rewards.size(0),
               "advantages: prompt_index must be [N] = ", rewards.sizes(), ", got ", prompt_index.sizes());
  GRPO_REQUIRE(rewards.is_floating_point(), "advantages: rewards must be floating point, got ", rewards.dtype());
  GRPO_REQUIRE(!prompt_index.is_floating_point() && prompt_index.scalar_type() != torch::kBool,
               "advantages: prompt_index must be an integer tensor, got ", prompt_index.dtype());
  auto rc = rewards.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto pc = prompt_index.detach().to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = rc.size(0);
  Groups out;
  out.r.assign(rc.data_ptr<double>(), rc.data_ptr<double>() + n);
  std::map<int64_t, std::vector<int64_t>> by_key;
  const int64_t* p = pc.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) by_key[p[i]].push_back(i);
  out.g.assign(n, -1);
  for (auto& [key, idx] : by_key) {
    GRPO_REQUIRE(idx.size() >= 2, "advantages: group of prompt_index ", key,
                 " has a single completion; a group needs at least 2 (grpo.num_generations >= 2) to have a baseline");
    for (int64_t i : idx) out.g[i] = static_cast<int64_t>(out.keys.size());
    out.keys.push_back(key);
    out.members.push_back(std::move(idx));
  }
  return out;
}

bool all_equal_finite(const std::vector<double>& v) {
  const double* first = nullptr;
  for (const double& x : v) {
    if (std::isnan(x)) continue;
    if (!first) first = &x;
    else if (x != *first) return false;
  }
  return true;
}

}  // namespace

MeanStd nan_mean_std(const std::vector<double>& v) {
  MeanStd s;
  double sum = 0;
  for (double x : v)
    if (!std::isnan(x)) sum += x, ++s.count;
  if (s.count == 0) {
    s.mean = s.std = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.mean = sum / static_cast<double>(s.count);
  if (s.count < 2) {
    s.std = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  double ss = 0;
  for (double x : v)
    if (!std::isnan(x)) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(s.count - 1));
  return s;
}

AdvantageResult compute_advantages(const torch::Tensor& rewards, const torch::Tensor& prompt_index,
                                   config::ScaleRewards scale, double eps) {
  GRPO_REQUIRE(eps > 0, "advantages: eps must be > 0, got ", eps);
  Groups gr = group(rewards, prompt_index);
  const int64_t n = static_cast<int64_t>(gr.r.size());
  const int64_t ng = static_cast<int64_t>(gr.keys.size());
  std::vector<double> adv(n, 0.0);
  std::vector<uint8_t> zero_std(ng, 0);
  const auto batch = nan_mean_std(gr.r);
  int64_t in_zero_std = 0;
  for (int64_t k = 0; k < ng; ++k) {
    std::vector<double> vals;
    for (int64_t i : gr.members[k]) vals.push_back(gr.r[i]);
    const auto group_stats = nan_mean_std(vals);
    if (all_equal_finite(vals)) {
      zero_std[k] = 1;
      in_zero_std += static_cast<int64_t>(vals.size());
      continue;  // advantages stay exactly 0
    }
    const double denom = scale == config::ScaleRewards::GROUP   ? group_stats.std + eps
                         : scale == config::ScaleRewards::BATCH ? batch.std + eps
                                                                : 1.0;
    for (int64_t i : gr.members[k]) {
      const double a = (gr.r[i] - group_stats.mean) / denom;
      adv[i] = std::isfinite(a) ? a : 0.0;  // NaN reward or NaN std (TRL's nan_to_num)
    }
  }
  AdvantageResult res;
  const auto dev = rewards.device();
  res.advantages = torch::tensor(adv, torch::kFloat64).to(torch::kFloat32).to(dev);
  res.group_zero_std = torch::tensor(std::vector<int64_t>(zero_std.begin(), zero_std.end()), torch::kInt64)
                           .to(torch::kBool)
                           .to(dev);
  res.group_index = torch::tensor(gr.g, torch::kInt64).to(dev);
  res.reward_mean = batch.mean;
  res.reward_std = batch.std;
  res.frac_zero_std = n ? static_cast<double>(in_zero_std) / n : 0.0;
  res.num_groups = ng;
  return res;
}

std::vector<int64_t> zero_variance_groups(const torch::Tensor& rewards, const torch::Tensor& prompt_index) {
  Groups gr = group(rewards, prompt_index);
  std::vector<int64_t> out;
  for (size_t k = 0; k < gr.keys.size(); ++k) {
    std::vector<double> vals;
    for (int64_t i : gr.members[k]) vals.push_back(gr.r[i]);
    if (all_equal_finite(vals)) out.push_back(gr.keys[k]);
  }
  return out;
}

}  // namespace grpo::train
