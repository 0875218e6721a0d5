#include "grpo/train/evaluate.h"

#include <algorithm>

#include "grpo/reward/answer_extraction.h"
#include "grpo/rollout/engine.h"
#include "grpo/rollout/sampling.h"
#include "grpo/train/eval_metrics.h"
#include "grpo/train/stage_runner.h"
#include "grpo/util/error.h"

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

// The first configured function of `kind`, if any.
std::optional<size_t> first_function(const config::RewardConfig& cfg, config::RewardKind kind) {
  for (size_t i = 0; i < cfg.functions.size(); ++i)
    if (cfg.functions[i].name == kind) return i;
  return std::nullopt;
}

reward::RewardSetResult score(const std::vector<rollout::Completion>& comps, const std::vector<const data::Record*>& recs,
                              const std::vector<std::string>& prompt_texts, const reward::RewardSet& rewards,
                              const config::ToolsConfig& tools) {
  std::vector<reward::RewardInput> in;
  in.reserve(comps.size());
  for (const auto& c : comps) {
    auto i = static_cast<size_t>(c.prompt_index);
    in.push_back({prompt_texts[i], c.text, recs[i]->row, static_cast<int64_t>(c.completion_length)});
    reward::set_tool_output_markers(in.back(), tools);  // answers a tool printed do not count
  }
  return rewards.score(in);
}

// The math_answer reward's answer extraction (its first entry's parameters), for the JSONL and maj@k.
struct AnswerReader {
  std::optional<reward::AnswerExtractor> extractor;
  double tolerance = 0;
  explicit AnswerReader(const config::RewardConfig& cfg) {
    if (auto m = first_function(cfg, config::RewardKind::MATH_ANSWER)) {
      const auto& p = cfg.functions[*m].math_answer;
      extractor.emplace(p.answer_regex, p.think_tag, p.answer_tag, static_cast<size_t>(p.max_completion_bytes));
      tolerance = p.tolerance;
    }
  }
  std::optional<std::string> extract(const std::string& text) const {
    return extractor ? extractor->extract(text) : std::nullopt;
  }
};

}  // namespace

std::vector<ProblemResult> evaluate_problems(Policy& policy, const data::Dataset& data, const std::vector<int64_t>& indices,
                                             const config::Config& cfg, const reward::RewardSet& rewards,
                                             const EvalSampling& sampling) {
  std::vector<ProblemResult> out(indices.size());
  if (indices.empty()) return out;
  const auto correctness = correctness_functions(cfg.reward);
  const auto format = first_function(cfg.reward, config::RewardKind::FORMAT);
  const AnswerReader reader(cfg.reward);
  std::vector<const data::Record*> recs;
  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::string> texts;
  std::vector<uint64_t> seeds;
  for (int64_t i : indices) {
    GRPO_CHECK(i >= 0 && static_cast<size_t>(i) < data.size(), "problem index ", i, " outside the split of ", data.size());
    recs.push_back(&data[static_cast<size_t>(i)]);
    auto msgs = prompt_messages(data[static_cast<size_t>(i)], cfg);
    texts.push_back(policy.chat->render(msgs, true));
    prompts.push_back(encode_prompt(policy, msgs));
    seeds.push_back(rollout::substream_seed(sampling.seed + 1, static_cast<uint64_t>(i)));
  }
  bool was_training = policy.model->is_training();
  policy.model->eval();

  config::RolloutConfig greedy = cfg.rollout;
  greedy.temperature = 0.0;
  rollout::RolloutEngine g(policy.model, *policy.tokenizer, greedy);
  g.set_bf16(cfg.trainer.bf16);  // evaluate the policy in the arithmetic it was sampled and trained in
  auto comps = g.generate(prompts, 1, seeds);  // greedy: the seeds draw nothing
  auto r = score(comps, recs, texts, rewards, cfg.rollout.tools);
  auto ok = correct_rows(r, correctness);
  for (size_t i = 0; i < out.size(); ++i) {
    auto& p = out[i];
    p.index = indices[i];
    p.prompt = texts[i];
    p.completion = comps[i].text;
    p.answer = reader.extract(comps[i].text);
    p.correct = ok[i];
    p.formatted = format && r.per_function[*format][i] >= 1.0f - 1e-6f;
    p.truncated = comps[i].finish_reason == rollout::FinishReason::LENGTH;
    p.length = comps[i].completion_length;
    for (size_t f = 0; f < r.names.size(); ++f) p.rewards[r.names[f]] = r.per_function[f][i];
    p.rewards["total"] = r.total[i];
  }

  const int n = sampling.num_samples;
  if (n > 1) {
    config::RolloutConfig sample_cfg = cfg.rollout;
    sample_cfg.temperature = sampling.temperature;
    rollout::RolloutEngine s(policy.model, *policy.tokenizer, sample_cfg);
    s.set_bf16(cfg.trainer.bf16);
    auto samples = s.generate(prompts, n, seeds);
    auto rs = score(samples, recs, texts, rewards, cfg.rollout.tools);
    auto oks = correct_rows(rs, correctness);
    for (size_t i = 0; i < out.size(); ++i) {
      auto& p = out[i];
      for (int j = 0; j < n; ++j) {
        const size_t row = i * static_cast<size_t>(n) + static_cast<size_t>(j);
        p.samples.push_back(samples[row].text);
        p.sample_answers.push_back(voting_answer(reader.extract(samples[row].text), reader.tolerance));
        p.sample_correct.push_back(oks[row]);
        p.sample_lengths.push_back(samples[row].completion_length);
        p.sample_truncated.push_back(samples[row].finish_reason == rollout::FinishReason::LENGTH);
      }
    }
  }
  if (was_training) policy.model->train();
  return out;
}

EvalResult summarize_eval(std::vector<ProblemResult> problems, const config::RewardConfig& reward_cfg,
                          const std::vector<int>& ks) {
  EvalResult res;
  res.has_accuracy = !correctness_functions(reward_cfg).empty();
  res.has_format = first_function(reward_cfg, config::RewardKind::FORMAT).has_value();
  const auto math = first_function(reward_cfg, config::RewardKind::MATH_ANSWER);
  res.num_prompts = static_cast<int64_t>(problems.size());
  if (problems.empty()) return res;
  std::sort(problems.begin(), problems.end(), [](const ProblemResult& a, const ProblemResult& b) { return a.index < b.index; });
  const int n = std::max<int>(1, static_cast<int>(problems.front().samples.size()));
  const double count = static_cast<double>(problems.size());
  double len = 0, formatted = 0, truncated = 0;
  for (const auto& p : problems) {
    GRPO_REQUIRE(std::max<int>(1, static_cast<int>(p.samples.size())) == n, "problem ", p.index, " has ",
                 p.samples.size(), " samples, problem ", problems.front().index, " has ", problems.front().samples.size());
    res.accuracy += p.correct;
    len += static_cast<double>(p.length);
    formatted += p.formatted;
    truncated += p.truncated;
    for (const auto& [name, v] : p.rewards) res.reward_means[name] += v;
  }
  res.accuracy /= count;
  res.mean_completion_length = len / count;
  res.format_rate = formatted / count;
  res.truncation_rate = truncated / count;
  for (auto& [name, v] : res.reward_means) v /= count;

  res.num_samples = n;
  res.k = n;
  if (n == 1) {
    res.pass_at[1] = res.accuracy;
    res.pass_at_k = res.accuracy;
    return res;
  }
  const SameAnswer same = math ? math_same_answer(reward_cfg.functions[*math].math_answer.tolerance) : SameAnswer{};
  std::vector<int> all_ks = ks;
  if (std::find(all_ks.begin(), all_ks.end(), n) == all_ks.end()) all_ks.push_back(n);  // pass_at_k is pass@n
  double sample_len = 0;
  for (const auto& p : problems)
    for (int64_t l : p.sample_lengths) sample_len += static_cast<double>(l);
  res.sample_mean_completion_length = sample_len / (count * n);
  for (int k : all_ks) {
    GRPO_REQUIRE(k >= 1 && k <= n, "pass@", k, ": k must be between 1 and the samples per problem (", n, ")");
    double pass = 0, maj = 0;
    for (const auto& p : problems) {
      int64_t c = std::count(p.sample_correct.begin(), p.sample_correct.end(), uint8_t{1});
      pass += pass_at_k(n, c, k);
      if (math) maj += majority_vote(p.sample_answers, p.sample_correct, same, k).correct;
    }
    res.pass_at[k] = pass / count;
    if (math && res.has_accuracy) res.maj_at[k] = maj / count;
  }
  res.pass_at_k = res.pass_at[n];
  return res;
}

EvalResult evaluate(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                    const reward::RewardSet& rewards, uint64_t seed, int64_t max_prompts) {
  int64_t n = static_cast<int64_t>(data.size());
  if (max_prompts > 0) n = std::min(n, max_prompts);
  std::vector<int64_t> indices(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) indices[static_cast<size_t>(i)] = i;
  EvalSampling sampling{cfg.trainer.eval_num_samples, cfg.rollout.temperature, seed};
  auto problems = evaluate_problems(policy, data, indices, cfg, rewards, sampling);
  return summarize_eval(std::move(problems), cfg.reward, {cfg.trainer.eval_num_samples});
}

std::map<std::string, double> eval_metrics(const EvalResult& r) {
  std::map<std::string, double> m;
  if (r.has_accuracy) {
    m["eval/accuracy"] = r.accuracy;
    m["eval/pass@" + std::to_string(r.k)] = r.pass_at_k;
    for (const auto& [k, v] : r.pass_at) m["eval/pass@" + std::to_string(k)] = v;
    for (const auto& [k, v] : r.maj_at) m["eval/maj@" + std::to_string(k)] = v;
  }
  if (r.has_format) m["eval/format_rate"] = r.format_rate;
  m["eval/truncation_rate"] = r.truncation_rate;
  for (const auto& [k, v] : r.reward_means) m["eval/rewards/" + k] = v;
  m["eval/completion_length"] = r.mean_completion_length;
  return m;
}

namespace {

template <class T> T field(const nlohmann::json& j, const char* key) {
  GRPO_REQUIRE(j.contains(key), "eval record: missing field '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(str("eval record: field '", key, "' has the wrong type (", e.what(), ")"));
  }
}

nlohmann::json optional_text(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(); }
std::optional<std::string> text_or_null(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  GRPO_REQUIRE(j.is_string(), "eval record: an answer must be a string or null");
  return j.get<std::string>();
}

}  // namespace

nlohmann::json problem_to_json(const ProblemResult& p) {
  nlohmann::json j = {{"index", p.index},         {"prompt", p.prompt},     {"completion", p.completion},
                      {"answer", optional_text(p.answer)}, {"correct", p.correct}, {"formatted", p.formatted},
                      {"truncated", p.truncated}, {"length", p.length},     {"rewards", p.rewards}};
  if (!p.samples.empty()) {
    nlohmann::json answers = nlohmann::json::array();
    for (const auto& a : p.sample_answers) answers.push_back(optional_text(a));
    std::vector<bool> correct(p.sample_correct.begin(), p.sample_correct.end());
    std::vector<bool> trunc(p.sample_truncated.begin(), p.sample_truncated.end());
    j["num_correct"] = std::count(correct.begin(), correct.end(), true);
    j["samples"] = p.samples;
    j["sample_answers"] = answers;
    j["sample_correct"] = correct;
    j["sample_lengths"] = p.sample_lengths;
    j["sample_truncated"] = trunc;
  }
  return j;
}

ProblemResult problem_from_json(const nlohmann::json& j) {
  GRPO_REQUIRE(j.is_object(), "eval record: expected a JSON object");
  ProblemResult p;
  p.index = field<int64_t>(j, "index");
  p.prompt = field<std::string>(j, "prompt");
  p.completion = field<std::string>(j, "completion");
  GRPO_REQUIRE(j.contains("answer"), "eval record: missing field 'answer'");
  p.answer = text_or_null(j["answer"]);
  p.correct = field<bool>(j, "correct");
  p.formatted = field<bool>(j, "formatted");
  p.truncated = field<bool>(j, "truncated");
  p.length = field<int64_t>(j, "length");
  p.rewards = field<std::map<std::string, double>>(j, "rewards");
  if (j.contains("samples")) {
    p.samples = field<std::vector<std::string>>(j, "samples");
    for (const auto& a : field<nlohmann::json>(j, "sample_answers")) p.sample_answers.push_back(text_or_null(a));
    for (bool b : field<std::vector<bool>>(j, "sample_correct")) p.sample_correct.push_back(b);
    p.sample_lengths = field<std::vector<int64_t>>(j, "sample_lengths");
    for (bool b : field<std::vector<bool>>(j, "sample_truncated")) p.sample_truncated.push_back(b);
    const size_t n = p.samples.size();
    GRPO_REQUIRE(p.sample_answers.size() == n && p.sample_correct.size() == n && p.sample_lengths.size() == n &&
                     p.sample_truncated.size() == n,
                 "eval record ", p.index, ": the sample_* lists differ in length from samples");
  }
  return p;
}

}  // namespace grpo::train
