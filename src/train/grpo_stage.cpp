#include "grpo/train/grpo_stage.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "grpo/dist/rank_rng.h"
#include "grpo/train/advantages.h"
#include "grpo/train/evaluate.h"
#include "grpo/train/loss.h"
#include "grpo/util/log.h"

namespace grpo::train {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void put_stats(std::map<std::string, double>& m, const std::string& key, const std::vector<double>& v) {
  if (v.empty()) return;
  double mean = 0, mn = v[0], mx = v[0];
  for (double x : v) mean += x, mn = std::min(mn, x), mx = std::max(mx, x);
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  m[key + "/mean"] = mean;
  m[key + "/std"] = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
  m[key + "/min"] = mn;
  m[key + "/max"] = mx;
}

// Appends rows `rows` of `src` to `dst` (a RewardSetResult of the kept rows of several draws):
// scores row by row, problems re-numbered, counters summed (they count work done, kept or not).
void append_scored_rows(reward::RewardSetResult& dst, const reward::RewardSetResult& src, const std::vector<size_t>& rows) {
  if (dst.names.empty()) dst.names = src.names, dst.weights = src.weights, dst.per_function.resize(src.names.size());
  for (size_t r : rows) {
    const size_t at = dst.total.size();
    for (size_t f = 0; f < src.per_function.size(); ++f) dst.per_function[f].push_back(src.per_function[f][r]);
    dst.total.push_back(src.total[r]);
    dst.masked.push_back(src.masked[r]);
    for (const auto& p : src.problems)
      if (p.row == r) dst.problems.push_back({at, p.function, p.message});
  }
  for (const auto& [k, v] : src.counters) dst.counters[k] += v;
}

}  // namespace

struct GrpoStage::Generation {
  std::vector<const data::Record*> records;         // [B] this rank's prompts
  std::vector<std::vector<int64_t>> prompt_ids;     // [B]
  std::vector<rollout::Completion> completions;     // [B * G], completion j of prompt i at i*G + j
  torch::Tensor advantages;                         // [B * G] float32
  torch::Tensor row_valid;                          // [B * G] float32: 0 for masked rows (sandbox failure)
  std::vector<TokenBatch> micro;                    // gradient_accumulation_steps micro-batches
  std::vector<torch::Tensor> old_logprobs;          // per micro-batch [mb, C] (num_iterations > 1)
  std::vector<torch::Tensor> ref_logprobs;          // per micro-batch [mb, C] (beta > 0)
  double num_tokens = 0;                            // completion tokens in the loss on this rank
};

GrpoStage::GrpoStage(const config::Config& cfg, StageSettings settings, Policy& policy,
                     std::shared_ptr<dist::Distributed> dist, const reward::RewardSet& rewards,
                     const data::Dataset* eval_data)
    : StageRunner(cfg, std::move(settings), policy, std::move(dist)), rewards_(rewards), eval_data_(eval_data) {
  engine_ = std::make_unique<rollout::RolloutEngine>(policy_.model, *policy_.tokenizer, cfg_.rollout);
  // beta == 0 loads no reference model, unless grpo.log_kl asks for the KL as a metric.
  if (cfg_.grpo.beta > 0 || cfg_.grpo.log_kl) ref_ = clone_frozen(policy_.model);
}

GrpoStage::~GrpoStage() = default;

nlohmann::json GrpoStage::extra_state() const { return {{"generations", generations_}}; }

void GrpoStage::restore_extra_state(const nlohmann::json& s) {
  generations_ = s.value("generations", int64_t{0});
  iteration_ = 0;
  // The reference model was cloned from the stage's starting weights in the constructor, before
  // the checkpoint's weights were loaded: exact without ref_model_sync_steps. With re-syncs, a
  // resumed run's reference is the starting policy until its next sync (documented limitation).
}

torch::Tensor GrpoStage::no_grad_logprobs(model::Transformer& model, const TokenBatch& b) {
  torch::NoGradGuard ng;
  return completion_logprobs(model, b, cfg_.rollout.temperature, cfg_.trainer.bf16).logprobs;
}

void GrpoStage::generate(std::map<std::string, double>& m) {
  const int G = cfg_.grpo.num_generations;
  const int world = dist_ ? dist_->world_size() : 1;
  const int rank = dist_ ? dist_->rank() : 0;
  const int64_t completions_per_step = int64_t(settings_.per_device_train_batch_size) * cfg_.trainer.gradient_accumulation_steps;
  const int64_t B = completions_per_step / G;
  auto gen = std::make_unique<Generation>();

  // One draw: B prompts per rank, G completions each, scored. Without dynamic sampling the step
  // trains on draw 0. With it (DAPO sec. 3.2), groups whose rewards are all equal (zero advantage,
  // no gradient) are dropped and more draws follow, up to grpo.max_resample_rounds extra ones,
  // until B groups are kept; surplus groups of the last draw are discarded (their prompts are
  // consumed, as in verl). Still short after the cap: the step trains on the groups kept (a
  // warning), or on draw 0 unfiltered when none was kept at all.
  struct Draw {
    std::vector<const data::Record*> records;      // [B]
    std::vector<std::vector<int64_t>> prompt_ids;  // [B]
    std::vector<std::string> prompt_texts;         // [B]
    std::vector<rollout::Completion> completions;  // [B * G], prompt_index in [0, B)
    reward::RewardSetResult scored;                // [B * G] rows, completion order
    std::vector<bool> keep;                        // [B] group has reward variance
  };
  std::vector<Draw> draws;
  const bool dynamic = cfg_.grpo.dynamic_sampling;
  int64_t kept = 0, dropped = 0, rollout_tokens = 0;
  double t_rollout = 0, t_reward = 0;
  for (int round = 0;; ++round) {
    Draw d;
    // Every rank walks the same global order and takes its own slice: all G completions of a
    // prompt stay on one rank, so advantages stay local.
    auto global = loader_->next_batch(B * world);
    for (int64_t i = 0; i < B; ++i) d.records.push_back(global[static_cast<size_t>(rank * B + i)]);
    for (const auto* r : d.records) {
      auto msgs = prompt_messages(*r, cfg_);
      d.prompt_texts.push_back(policy_.chat->render(msgs, true));
      d.prompt_ids.push_back(encode_prompt(policy_, msgs));
    }
    auto t0 = std::chrono::steady_clock::now();
    policy_.model->eval();
    // One random stream per prompt, keyed by its place in the global batch (draw r continues the
    // numbering after draw r-1's B * world prompts) and the generation count, not by rank: N ranks
    // sample exactly the completions one process would.
    std::vector<uint64_t> seeds;
    for (int64_t i = 0; i < B; ++i)
      seeds.push_back(dist::derive_seed(static_cast<uint64_t>(cfg_.trainer.seed), int64_t(round) * B * world + rank * B + i,
                                        static_cast<uint64_t>(generations_)));
    d.completions = engine_->generate(d.prompt_ids, G, seeds);
    policy_.model->train();
    t_rollout += seconds_since(t0);
    rollout_tokens += engine_->last_stats().completion_tokens;

    t0 = std::chrono::steady_clock::now();
    std::vector<reward::RewardInput> in;
    for (const auto& c : d.completions) {
      auto i = static_cast<size_t>(c.prompt_index);
      in.push_back({d.prompt_texts[i], c.text, d.records[i]->row, static_cast<int64_t>(c.completion_length)});
    }
    d.scored = rewards_.score(in);
    t_reward += seconds_since(t0);

    d.keep.assign(static_cast<size_t>(B), true);
    if (dynamic) {
      const auto n = static_cast<int64_t>(d.completions.size());
      auto r = torch::empty({n}, torch::kFloat64);
      auto pi = torch::empty({n}, torch::kInt64);
      for (int64_t i = 0; i < n; ++i) {
        r[i] = d.scored.masked[static_cast<size_t>(i)] ? NAN : static_cast<double>(d.scored.total[static_cast<size_t>(i)]);
        pi[i] = d.completions[static_cast<size_t>(i)].prompt_index;
      }
      for (int64_t g : zero_variance_groups(r, pi)) d.keep[static_cast<size_t>(g)] = false, ++dropped;
    }
    for (bool k : d.keep) kept += k;
    draws.push_back(std::move(d));
    if (!dynamic) break;
    // Ranks draw in lockstep (the loader order is global): another draw when any rank is short.
    double short_anywhere = kept < B ? 1.0 : 0.0;
    if (world > 1) short_anywhere = dist_->all_reduce(short_anywhere, dist::ReduceOp::MAX);
    if (short_anywhere == 0.0 || round >= cfg_.grpo.max_resample_rounds) break;
  }
  m["time/rollout"] = t_rollout;
  m["time/reward"] = t_reward;

  // The groups trained on: the first `take` kept groups in draw order. With several ranks every
  // rank takes the same number (the smallest rank's), so all run the same micro-batches.
  int64_t take = std::min(kept, B);
  if (dynamic && world > 1) take = static_cast<int64_t>(dist_->all_reduce(static_cast<double>(take), dist::ReduceOp::MIN));
  if (dynamic && take == 0) {
    for (auto& d : draws) d.keep.assign(d.keep.size(), false);
    draws[0].keep.assign(static_cast<size_t>(B), true);
    take = B;
    if (!dist_ || dist_->is_main())
      log::warn(str("dynamic sampling: step ", step_ + 1, ": no group with reward variance in ", draws.size(),
                    " draw(s) (grpo.max_resample_rounds = ", cfg_.grpo.max_resample_rounds, "); training on the first draw"));
  } else if (dynamic && take < B && (!dist_ || dist_->is_main())) {
    log::warn(str("dynamic sampling: step ", step_ + 1, ": ", take, " of ", B, " groups with reward variance after ",
                  draws.size() - 1, " extra draw(s) (grpo.max_resample_rounds = ", cfg_.grpo.max_resample_rounds,
                  "); training on those"));
  }
  std::vector<std::string> prompt_texts;
  reward::RewardSetResult scored;
  for (auto& d : draws) {
    std::vector<size_t> rows;
    for (size_t g = 0; g < d.keep.size() && static_cast<int64_t>(gen->records.size()) < take; ++g) {
      if (!d.keep[g]) continue;
      const auto at = static_cast<int64_t>(gen->records.size());
      gen->records.push_back(d.records[g]);
      gen->prompt_ids.push_back(std::move(d.prompt_ids[g]));
      prompt_texts.push_back(std::move(d.prompt_texts[g]));
      for (size_t i = 0; i < d.completions.size(); ++i)
        if (d.completions[i].prompt_index == static_cast<int64_t>(g)) {
          rows.push_back(i);
          gen->completions.push_back(std::move(d.completions[i]));
          gen->completions.back().prompt_index = at;
        }
    }
    append_scored_rows(scored, d.scored, rows);
  }
  if (dynamic) {
    m["dynamic_sampling/extra_draws"] = static_cast<double>(draws.size() - 1);
    m["dynamic_sampling/groups_dropped"] = static_cast<double>(dropped);
    m["dynamic_sampling/groups_trained"] = static_cast<double>(gen->records.size());
    sum_metric_keys_.insert("dynamic_sampling/groups_dropped");
    sum_metric_keys_.insert("dynamic_sampling/groups_trained");
  }

  const int64_t N = static_cast<int64_t>(gen->completions.size());
  auto rewards = torch::empty({N}, torch::kFloat64);
  auto prompt_index = torch::empty({N}, torch::kInt64);
  gen->row_valid = torch::ones({N}, torch::kFloat32);
  int64_t masked_rows = 0;
  for (int64_t i = 0; i < N; ++i) {
    bool masked = scored.masked[static_cast<size_t>(i)] != 0;
    rewards[i] = masked ? NAN : static_cast<double>(scored.total[static_cast<size_t>(i)]);
    prompt_index[i] = gen->completions[static_cast<size_t>(i)].prompt_index;
    if (masked) gen->row_valid[i] = 0.0f, ++masked_rows;
  }
  auto adv = compute_advantages(rewards, prompt_index, cfg_.grpo.scale_rewards, cfg_.grpo.advantage_eps);
  gen->advantages = adv.advantages.to(torch::kFloat32);

  // Metrics of the generation batch.
  m["reward"] = adv.reward_mean;
  m["reward_std"] = adv.reward_std;
  m["frac_reward_zero_std"] = adv.frac_zero_std;
  m["rewards/masked_rows"] = static_cast<double>(masked_rows);
  m["rewards/problems"] = static_cast<double>(scored.problems.size());
  for (const auto& [k, v] : scored.counters) m["rewards/" + k] = v, sum_metric_keys_.insert("rewards/" + k);
  for (size_t f = 0; f < scored.names.size(); ++f) {
    std::vector<double> v(scored.per_function[f].begin(), scored.per_function[f].end());
    double mean = 0, var = 0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    for (double x : v) var += (x - mean) * (x - mean);
    m["rewards/" + scored.names[f] + "/mean"] = mean;
    m["rewards/" + scored.names[f] + "/std"] = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
  }
  auto correctness = correctness_functions(cfg_.reward);
  if (!correctness.empty()) {
    auto ok = correct_rows(scored, correctness);
    double acc = 0;
    for (auto o : ok) acc += o;
    m["accuracy"] = acc / static_cast<double>(ok.size());
  }
  std::vector<double> advs(gen->advantages.data_ptr<float>(), gen->advantages.data_ptr<float>() + N);
  put_stats(m, "advantages", advs);
  std::vector<double> lens;
  int64_t truncated = 0, tokens = 0;
  for (const auto& c : gen->completions) {
    lens.push_back(c.completion_length);
    truncated += c.finish_reason == rollout::FinishReason::LENGTH;
    tokens += c.completion_length + c.prompt_length;
  }
  put_stats(m, "completions/length", lens);
  m["completions/truncated_ratio"] = static_cast<double>(truncated) / static_cast<double>(N);
  m["tokens_per_second/rollout"] = static_cast<double>(rollout_tokens) / std::max(1e-9, m["time/rollout"]);

  // Micro-batches of per_device_train_batch_size completions, in completion order.
  const int64_t mb = settings_.per_device_train_batch_size;
  gen->num_tokens = 0;
  for (int64_t s = 0; s < N; s += mb) {
    std::vector<const std::vector<int64_t>*> ps, cs;
    for (int64_t i = s; i < std::min(N, s + mb); ++i) {
      const auto& c = gen->completions[static_cast<size_t>(i)];
      ps.push_back(&gen->prompt_ids[static_cast<size_t>(c.prompt_index)]);
      cs.push_back(&c.token_ids);
    }
    int64_t pad = policy_.tokenizer->special().pad.value_or(policy_.eos_ids.empty() ? 0 : static_cast<int32_t>(policy_.eos_ids[0]));
    auto tb = make_token_batch(ps, cs, pad, policy_.model->device());
    // Rows left out of the loss: masked by a reward function, or truncated when asked.
    auto keep = gen->row_valid.narrow(0, s, tb.completion_mask.size(0)).clone();
    if (cfg_.grpo.mask_truncated_completions)
      for (int64_t i = 0; i < keep.size(0); ++i)
        if (gen->completions[static_cast<size_t>(s + i)].finish_reason == rollout::FinishReason::LENGTH) keep[i] = 0.0f;
    tb.completion_mask = tb.completion_mask * keep.to(tb.completion_mask.device()).unsqueeze(1);
    gen->num_tokens += tb.completion_mask.sum().item<double>();
    gen->micro.push_back(std::move(tb));
  }

  auto t0 = std::chrono::steady_clock::now();
  if (cfg_.grpo.num_iterations > 1)
    for (auto& tb : gen->micro) gen->old_logprobs.push_back(no_grad_logprobs(policy_.model, tb));
  if (ref_)
    for (auto& tb : gen->micro) gen->ref_logprobs.push_back(no_grad_logprobs(ref_, tb));
  m["time/logprobs"] = seconds_since(t0);
  m["tokens_per_generation"] = static_cast<double>(tokens);

  if (metrics_log_ && cfg_.logging.log_completions_steps > 0 && step_ % cfg_.logging.log_completions_steps == 0) {
    std::vector<nlohmann::json> samples;
    for (int64_t i = 0; i < std::min<int64_t>(N, cfg_.logging.num_completions_to_print); ++i) {
      const auto& c = gen->completions[static_cast<size_t>(i)];
      nlohmann::json s = {{"prompt", prompt_texts[static_cast<size_t>(c.prompt_index)]},
                          {"completion", c.text},
                          {"finish_reason", std::string(rollout::finish_reason_name(c.finish_reason))},
                          {"reward", scored.total[static_cast<size_t>(i)]},
                          {"advantage", advs[static_cast<size_t>(i)]}};
      for (size_t f = 0; f < scored.names.size(); ++f) s["rewards"][scored.names[f]] = scored.per_function[f][static_cast<size_t>(i)];
      samples.push_back(std::move(s));
    }
    metrics_log_->log_samples(step_ + 1, samples);
  }
  gen_ = std::move(gen);
  ++generations_;
}

bool GrpoStage::train_step(std::map<std::string, double>& m) {
  if (iteration_ == 0) generate(m);
  auto& gen = *gen_;
  auto t0 = std::chrono::steady_clock::now();
  auto opt = LossOptions::from_config(cfg_.grpo, cfg_.rollout.max_completion_length);
  const double N = static_cast<double>(gen.completions.size());
  LossNormaliser norm;
  norm.num_sequences = N;
  norm.num_tokens = gen.num_tokens;
  // dapo divides by the tokens of the whole generation batch, on every rank; so does the entropy
  // bonus of grpo and dr_grpo (whose policy term needs no token count). Gradients are then averaged
  // over ranks, hence the global count / world. bnpo normalises by this rank's tokens, as TRL does
  // (its one difference from dapo), so it is the one loss that depends on the number of ranks.
  const bool global_tokens = cfg_.grpo.loss_type == config::LossType::DAPO ||
                             (cfg_.grpo.loss_type != config::LossType::BNPO && cfg_.grpo.entropy_coef != 0.0);
  if (global_tokens && dist_ && dist_->world_size() > 1) norm.num_tokens = dist_->global_normalizer(gen.num_tokens);
  norm.num_tokens = std::max(1.0, norm.num_tokens);

  MetricAverager avg;
  double loss_total = 0, aux_total = 0;
  bool finite = true;
  int64_t row = 0;
  const size_t nmb = gen.micro.size();
  const double aux_coef = policy_.model->spec().moe.num_experts > 0 ? policy_.model->spec().moe.router_aux_loss_coef : 0.0;
  for (size_t k = 0; k < nmb; ++k) {
    auto& tb = gen.micro[k];
    const int64_t rows = tb.completion_ids.size(0);
    if (reducer_) reducer_->set_sync(k + 1 == nmb);
    auto lp = completion_logprobs(policy_.model, tb, cfg_.rollout.temperature, cfg_.trainer.bf16);
    LossInputs in;
    in.logprobs = lp.logprobs;
    if (!gen.old_logprobs.empty()) in.old_logprobs = gen.old_logprobs[k];
    if (!gen.ref_logprobs.empty()) in.ref_logprobs = gen.ref_logprobs[k];
    in.advantages = gen.advantages.narrow(0, row, rows).to(lp.logprobs.device());
    in.completion_mask = tb.completion_mask;
    if (cfg_.grpo.entropy_coef > 0) in.entropies = lp.entropies;
    auto res = compute_loss(in, opt, norm);
    auto loss = res.loss;
    if (aux_coef > 0) {
      // The aux loss is a mean over this micro-batch's tokens: weight micro-batches by their rows.
      auto aux = lp.aux_loss * (aux_coef * static_cast<double>(rows) / N);
      loss = loss + aux;
      aux_total += aux.item<double>();
    }
    double lv = res.loss.item<double>();
    finite = finite && std::isfinite(lv);
    loss_total += lv;
    loss.backward();
    const auto& lm = res.metrics;
    avg.add("clip_ratio/low", lm.clip_low_sum, lm.clip_count);
    avg.add("clip_ratio/high", lm.clip_high_sum, lm.clip_count);
    avg.add("clip_ratio/region", lm.clip_region_sum, lm.clip_count);
    if (ref_) avg.add("kl", lm.kl_sum, lm.token_count);
    {
      torch::NoGradGuard ng;
      auto msk = tb.completion_mask.to(torch::kFloat32);
      avg.add("entropy", (lp.entropies.detach() * msk).sum().item<double>(), msk.sum().item<double>());
    }
    row += rows;
  }
  for (auto& [k, v] : avg.means()) m[k] = v;
  m["loss"] = loss_total;
  if (aux_coef > 0) m["moe/aux_loss"] = aux_total;
  double norm_val = 0;
  finite = ranks_agree_finite(finite);
  if (finite) {
    norm_val = apply_gradients(m);
  } else {
    discard_gradients();
    m["learning_rate"] = settings_.learning_rate * schedule_->factor(step_);
    m["grad_norm"] = NAN;
  }
  m["time/update"] = seconds_since(t0);

  iteration_ = (iteration_ + 1) % cfg_.grpo.num_iterations;
  if (iteration_ == 0) gen_.reset();
  if (ref_ && cfg_.grpo.ref_model_sync_steps > 0 && (step_ + 1) % cfg_.grpo.ref_model_sync_steps == 0)
    copy_weights(ref_, policy_.model);

  reduce_metrics_over_ranks(m);
  if (eval_data_ && cfg_.trainer.eval_steps > 0 && (step_ + 1) % cfg_.trainer.eval_steps == 0 &&
      (step_ + 1) < settings_.max_steps) {
    auto t1 = std::chrono::steady_clock::now();
    auto ev = evaluate(policy_, *eval_data_, cfg_, rewards_, static_cast<uint64_t>(cfg_.trainer.seed) + 7919);
    for (auto& [k, v] : eval_metrics(ev)) m[k] = v;
    m["time/eval"] = seconds_since(t1);
  }
  return finite && std::isfinite(norm_val);
}

}  // namespace grpo::train
