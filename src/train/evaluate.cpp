#include "grpo/train/evaluate.h"

#include "grpo/rollout/engine.h"
#include "grpo/train/stage_runner.h"

namespace grpo::train {

std::vector<size_t> correctness_functions(const config::RewardConfig& cfg) {
  std::vector<size_t> out;
  for (size_t i = 0; i < cfg.functions.size(); ++i) {
    auto k = cfg.functions[i].name;
    if (k == config::RewardKind::MATH_ANSWER || k == config::RewardKind::COUNTDOWN || k == config::RewardKind::CODE)
      out.push_back(i);
  }
  return out;
}

std::vector<uint8_t> correct_rows(const reward::RewardSetResult& r, const std::vector<size_t>& correctness) {
  std::vector<uint8_t> ok(r.total.size(), correctness.empty() ? 0 : 1);
  for (size_t f : correctness)
    for (size_t i = 0; i < ok.size(); ++i)
      if (!(r.per_function[f][i] >= 1.0f - 1e-6f)) ok[i] = 0;
  return ok;
}

namespace {

reward::RewardSetResult score(const std::vector<rollout::Completion>& comps, const std::vector<const data::Record*>& recs,
                              const std::vector<std::string>& prompt_texts, const reward::RewardSet& rewards) {
  std::vector<reward::RewardInput> in;
  in.reserve(comps.size());
  for (const auto& c : comps) {
    auto i = static_cast<size_t>(c.prompt_index);
    in.push_back({prompt_texts[i], c.text, recs[i]->row, static_cast<int64_t>(c.completion_length)});
  }
  return rewards.score(in);
}

}  // namespace

EvalResult evaluate(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                    const reward::RewardSet& rewards, uint64_t seed, int64_t max_prompts) {
  EvalResult res;
  auto correctness = correctness_functions(cfg.reward);
  res.has_accuracy = !correctness.empty();
  int64_t n = static_cast<int64_t>(data.size());
  if (max_prompts > 0) n = std::min(n, max_prompts);
  res.num_prompts = n;
  if (n == 0) return res;
  std::vector<const data::Record*> recs;
  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::string> texts;
  for (int64_t i = 0; i < n; ++i) {
    recs.push_back(&data[static_cast<size_t>(i)]);
    auto msgs = prompt_messages(data[static_cast<size_t>(i)], cfg);
    texts.push_back(policy.chat->render(msgs, true));
    prompts.push_back(encode_prompt(policy, msgs));
  }
  bool was_training = policy.model->is_training();
  policy.model->eval();

  config::RolloutConfig greedy = cfg.rollout;
  greedy.temperature = 0.0;
  rollout::RolloutEngine g(policy.model, *policy.tokenizer, greedy);
  auto comps = g.generate(prompts, 1, seed);
  auto r = score(comps, recs, texts, rewards);
  auto ok = correct_rows(r, correctness);
  double len = 0;
  for (size_t i = 0; i < comps.size(); ++i) {
    res.accuracy += ok[i];
    len += comps[i].completion_length;
  }
  res.accuracy /= static_cast<double>(comps.size());
  res.mean_completion_length = len / static_cast<double>(comps.size());
  for (size_t f = 0; f < r.names.size(); ++f) {
    double s = 0;
    for (float v : r.per_function[f]) s += v;
    res.reward_means[r.names[f]] = s / static_cast<double>(r.per_function[f].size());
  }
  double tot = 0;
  for (float v : r.total) tot += v;
  res.reward_means["total"] = tot / static_cast<double>(r.total.size());

  res.k = cfg.trainer.eval_num_samples;
  if (res.k > 1) {
    rollout::RolloutEngine s(policy.model, *policy.tokenizer, cfg.rollout);
    auto samples = s.generate(prompts, res.k, seed + 1);
    auto rs = score(samples, recs, texts, rewards);
    auto oks = correct_rows(rs, correctness);
    int64_t hit = 0;
    for (int64_t i = 0; i < n; ++i) {
      bool any = false;
      for (int j = 0; j < res.k; ++j) any = any || oks[static_cast<size_t>(i * res.k + j)];
      hit += any;
    }
    res.pass_at_k = static_cast<double>(hit) / static_cast<double>(n);
  } else {
    res.pass_at_k = res.accuracy;
  }
  if (was_training) policy.model->train();
  return res;
}

std::map<std::string, double> eval_metrics(const EvalResult& r) {
  std::map<std::string, double> m;
  if (r.has_accuracy) {
    m["eval/accuracy"] = r.accuracy;
    m["eval/pass@" + std::to_string(r.k)] = r.pass_at_k;
  }
  for (const auto& [k, v] : r.reward_means) m["eval/rewards/" + k] = v;
  m["eval/completion_length"] = r.mean_completion_length;
  return m;
}

}  // namespace grpo::train
