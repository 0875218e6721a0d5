#include "grpo/train/grpo_stage.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "grpo/dist/rank_rng.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/model/lora.h"
#include "grpo/train/advantages.h"
#include "grpo/train/autocast.h"
#include "grpo/train/evaluate.h"
#include "grpo/train/loss.h"
#include "grpo/train/rollout_correction.h"
#include "grpo/train/tool_metrics.h"
#include "grpo/train/policy.h"
#include "grpo/util/log.h"

namespace grpo::train {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// key/mean and key/std (unbiased, 0 for fewer than 2 values) of v; averaged over ranks.
void put_mean_std(StepMetrics& m, const std::string& key, const std::vector<double>& v) {
  const auto s = nan_mean_std(v);
  m.add_mean(key + "/mean", s.mean);
  m.add_mean(key + "/std", s.count > 1 ? s.std : 0.0);
}

// key/mean, key/std, key/min and key/max of v; nothing when v is empty.
void put_stats(StepMetrics& m, const std::string& key, const std::vector<double>& v) {
  if (v.empty()) return;
  put_mean_std(m, key, v);
  m.add_min(key + "/min", *std::min_element(v.begin(), v.end()));  // the first of equal values, as std::min
  m.add_max(key + "/max", *std::max_element(v.begin(), v.end()));
}

}  // namespace

struct GrpoStage::Draws {
  std::vector<Draw> draws;  // in draw order; draws[0] is the one a step without dynamic sampling trains on
  int64_t kept = 0;         // groups with keep set, over all draws
  int64_t dropped = 0;      // groups dropped for zero reward variance, over all draws
};

struct GrpoStage::Generation {
  std::vector<const data::Record*> records;         // [B] this rank's prompts
  std::vector<std::vector<int64_t>> prompt_ids;     // [B]
  std::vector<rollout::Completion> completions;     // [B * G], completion j of prompt i at i*G + j
  torch::Tensor advantages;                         // [B * G] float32
  torch::Tensor row_valid;                          // [B * G] float32: 0 for masked rows (sandbox failure)
  std::vector<float> rewards;                       // [B * G] total reward (the tool metrics' with/without split)
  std::vector<uint8_t> masked;                      // [B * G] 1 = row masked by a reward function
  std::vector<TokenBatch> micro;                    // gradient_accumulation_steps micro-batches
  std::vector<torch::Tensor> old_logprobs;          // per micro-batch [mb, C] (num_iterations > 1)
  std::vector<torch::Tensor> ref_logprobs;          // per micro-batch [mb, C] (beta > 0)
  std::vector<torch::Tensor> rollout_logprobs;      // per micro-batch [mb, C] float32: the sampler's log-probs
  double num_tokens = 0;                            // completion tokens in the loss on this rank
  int64_t policy_version = 0;                       // optimizer steps done by the weights that sampled it
};

// async_rollout: on. What the rollout thread hands over: everything generate() computes before the
// log-probs, and the metrics it recorded on its side (world size 1: their local values).
struct GrpoStage::Pending {
  std::unique_ptr<Generation> gen;
  GroupBatch batch;  // prompt texts and scores, for log_completion_samples
  std::map<std::string, double> metrics;
  data::LoaderPosition data_after;  // the loader after this generation's draws
};

struct GrpoStage::Snapshot {
  model::Transformer model{nullptr};
  std::unique_ptr<rollout::RolloutEngine> engine;
};

GrpoStage::GrpoStage(const config::Config& cfg, StageSettings settings, Policy& policy,
                     std::shared_ptr<dist::Distributed> dist, const reward::RewardSet& rewards,
                     const data::Dataset* eval_data)
    : StageRunner(cfg, std::move(settings), policy, std::move(dist)), rewards_(rewards), eval_data_(eval_data) {
  engine_ = std::make_unique<rollout::RolloutEngine>(policy_.model, *policy_.tokenizer, cfg_.rollout);
  engine_->set_bf16(cfg_.trainer.bf16);  // samples in the bf16 arithmetic of the training forward (CPU)
  // beta == 0 loads no reference model, unless grpo.log_kl asks for the KL as a metric.
  // With LoRA adapters the reference is the base model: the policy with its adapters switched off.
  if ((cfg_.grpo.beta > 0 || cfg_.grpo.log_kl) && model::has_lora(*policy_.model)) ref_is_base_ = true;
  else if ((cfg_.grpo.beta > 0 || cfg_.grpo.log_kl) && sharder_ && sharder_->num_block_units() > 0) {
    // sharding full: no rank holds the policy's blocks whole, and the reference is sharded the same way.
    ref_shards_ = std::make_unique<dist::ShardedReference>(dist_, *sharder_, policy_.model);
    ref_ = ref_shards_->model();
    log::info(str("reference model: decoder blocks sharded like the policy's (sharding full), ", ref_shards_->held_bytes(),
                  " bytes on this rank, gathered one block at a time in its forwards"));
  } else if (cfg_.grpo.beta > 0 || cfg_.grpo.log_kl) ref_ = clone_frozen(policy_.model);
  if (ref_) model::apply_kernels(*ref_, cfg_.kernels, /*log_line=*/false);  // the policy's kernels, logged once by the pipeline
  if (ref_ && !ref_shards_) bf16_frozen_linears(ref_, cfg_.trainer.bf16);  // CPU bf16: its linears cast once, not per forward
  if (cfg_.grpo.async_rollout == config::AsyncRolloutMode::ON) {
    GRPO_REQUIRE(!dist_ || dist_->world_size() == 1, "grpo.async_rollout: on overlaps rollout and update in one process; with ",
                 dist_ ? dist_->world_size() : 1, " processes use distributed.rollout_ranks or grpo.async_rollout: off");
    GRPO_REQUIRE(cfg_.grpo.num_iterations == 1, "grpo.async_rollout: on needs grpo.num_iterations: 1 (got ",
                 cfg_.grpo.num_iterations, ")");
    GRPO_REQUIRE(!model::has_lora(*policy_.model), "grpo.async_rollout: on does not support LoRA adapters yet");
  }
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

torch::Tensor GrpoStage::reference_logprobs(const TokenBatch& b) {
  if (ref_) return no_grad_logprobs(ref_, b);
  model::LoraDisabled base(*policy_.model);
  return no_grad_logprobs(policy_.model, b);
}

torch::Tensor GrpoStage::no_grad_logprobs(model::Transformer& model, const TokenBatch& b) {
  torch::NoGradGuard ng;
  return completion_logprobs(model, b, cfg_.rollout.temperature, cfg_.trainer.bf16, cfg_.kernels.logprob_chunk_size).logprobs;
}

// One generation batch: select the groups (draw prompts, roll out, score, dynamic sampling), their
// advantages, the generation metrics, the micro-batches and the log-probs the updates need.
void GrpoStage::generate(StepMetrics& m) {
  if (cfg_.grpo.async_rollout == config::AsyncRolloutMode::ON) return take_generation(m);
  const int64_t completions_per_step = int64_t(settings_.per_device_train_batch_size) * cfg_.trainer.gradient_accumulation_steps;
  const int64_t B = completions_per_step / cfg_.grpo.num_generations;  // prompts per rank
  GroupBatch batch = select_groups(B, m, RollCtx{engine_.get(), generations_, step_});
  auto gen = std::make_unique<Generation>();
  gen->policy_version = step_;
  gen->records = std::move(batch.records);
  gen->prompt_ids = std::move(batch.prompt_ids);
  gen->completions = std::move(batch.completions);
  const auto adv = group_advantages(*gen, batch.scored);
  put_reward_metrics(m, batch.scored, adv);
  put_completion_metrics(m, *gen);
  build_micro_batches(*gen);
  old_and_ref_logprobs(*gen, m);
  log_completion_samples(*gen, batch);
  gen_ = std::move(gen);
  ++generations_;
}

// The groups this step trains on. One draw: B prompts per rank, G completions each, scored.
// Without dynamic sampling the step trains on draw 0. With it (DAPO sec. 3.2), groups whose rewards
// are all equal (zero advantage, no gradient) are dropped and more draws follow, up to
// grpo.max_resample_rounds extra ones, until B groups are kept; surplus groups of the last draw are
// discarded (their prompts are consumed, as in verl). Still short after the cap: the step trains on
// the groups kept (a warning), or on draw 0 unfiltered when none was kept at all.
GroupBatch GrpoStage::select_groups(int64_t B, StepMetrics& m, const RollCtx& ctx) {
  Draws draws = draw_groups(B, m, ctx);
  const int64_t take = groups_to_train(draws, B);
  GroupBatch batch = gather_kept_groups(draws.draws, take);
  if (cfg_.grpo.dynamic_sampling) {
    m.add_mean("dynamic_sampling/extra_draws", static_cast<double>(draws.draws.size() - 1));
    m.add_sum("dynamic_sampling/groups_dropped", static_cast<double>(draws.dropped));
    m.add_sum("dynamic_sampling/groups_trained", static_cast<double>(batch.records.size()));
  }
  return batch;
}

// Draws until every rank has B kept groups or the resample cap is reached (one draw without
// dynamic sampling). Records time/rollout, time/reward and tokens_per_second/rollout.
GrpoStage::Draws GrpoStage::draw_groups(int64_t B, StepMetrics& m, const RollCtx& ctx) {
  const bool dynamic = cfg_.grpo.dynamic_sampling;
  const int world = dist_ ? dist_->world_size() : 1;
  Draws out;
  int64_t rollout_tokens = 0;
  double t_rollout = 0, t_reward = 0;
  for (int round = 0;; ++round) {
    Draw d;
    const data::LoaderPosition before = loader_->position();
    draw_prompts(d, B);
    auto t0 = std::chrono::steady_clock::now();
    if (rollout_world_) {  // a rollout rank samples and scores (time/rollout holds both)
      remote_roll_out(d, round, B, ctx, before);
      for (const auto& c : d.completions) rollout_tokens += c.completion_length;
      t_rollout += seconds_since(t0);
    } else {
      rollout_tokens += roll_out(d, round, B, ctx);
      t_rollout += seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      score(d, ctx);
      t_reward += seconds_since(t0);
    }
    d.keep.assign(static_cast<size_t>(B), true);
    if (dynamic) out.dropped += drop_zero_variance_groups(d);
    for (bool k : d.keep) out.kept += k;
    out.draws.push_back(std::move(d));
    if (!dynamic) break;
    // Ranks draw in lockstep (the loader order is global): another draw when any rank is short.
    double short_anywhere = out.kept < B ? 1.0 : 0.0;
    if (world > 1) short_anywhere = dist_->all_reduce(short_anywhere, dist::ReduceOp::MAX);
    if (short_anywhere == 0.0 || round >= cfg_.grpo.max_resample_rounds) break;
  }
  m.add_mean("time/rollout", t_rollout);
  m.add_mean("time/reward", t_reward);
  m.add_sum("tokens_per_second/rollout", static_cast<double>(rollout_tokens) / std::max(1e-9, t_rollout));
  return out;
}

// This rank's B prompts of the next global batch. Every rank walks the same global order and takes
// its own slice: all G completions of a prompt stay on one rank, so advantages stay local.
void GrpoStage::draw_prompts(Draw& d, int64_t B) {
  const int world = dist_ ? dist_->world_size() : 1;
  const int rank = dist_ ? dist_->rank() : 0;
  auto global = loader_->next_batch(B * world);
  for (int64_t i = 0; i < B; ++i) d.records.push_back(global[static_cast<size_t>(rank * B + i)]);
  for (const auto* r : d.records) {
    auto msgs = prompt_messages(*r, cfg_);
    d.prompt_texts.push_back(policy_.chat->render(msgs, true));
    d.prompt_ids.push_back(encode_prompt(policy_, msgs));
  }
}

// G completions of each prompt of draw `round`; returns the completion tokens sampled.
int64_t GrpoStage::roll_out(Draw& d, int round, int64_t B, const RollCtx& ctx) {
  const int world = dist_ ? dist_->world_size() : 1;
  const int rank = dist_ ? dist_->rank() : 0;
  const bool own = ctx.engine == engine_.get();  // async: a snapshot's engine, the policy is training
  if (own) policy_.model->eval();
  // One random stream per prompt, keyed by its place in the global batch (draw r continues the
  // numbering after draw r-1's B * world prompts) and the generation count, not by rank: N ranks
  // sample exactly the completions one process would.
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < B; ++i)
    seeds.push_back(dist::derive_seed(static_cast<uint64_t>(cfg_.trainer.seed), int64_t(round) * B * world + rank * B + i,
                                      static_cast<uint64_t>(ctx.generation)));
  d.completions = ctx.engine->generate(d.prompt_ids, cfg_.grpo.num_generations, seeds);
  ++local_rollouts_;
  if (own) policy_.model->train();
  return ctx.engine->last_stats().completion_tokens;
}

// Rewards of every completion of `d`, in completion order.
void GrpoStage::score(Draw& d, const RollCtx& ctx) const {
  std::vector<reward::RewardInput> in;
  // TRL's TrainerState as the python reward kind passes it (python_reward.h): optimizer steps done
  // so far, the run's step budget, and the fractional epoch of the prompt loader.
  const auto pos = loader_->position();
  const double n = static_cast<double>(std::max<int64_t>(1, train_data_->size()));
  const nlohmann::json state = {{"global_step", ctx.step},
                                {"max_steps", settings_.max_steps},
                                {"epoch", static_cast<double>(pos.epoch) + static_cast<double>(pos.index) / n}};
  for (const auto& c : d.completions) {
    auto i = static_cast<size_t>(c.prompt_index);
    in.push_back({d.prompt_texts[i], c.text, d.records[i]->row, static_cast<int64_t>(c.completion_length)});
    reward::set_tool_output_markers(in.back(), cfg_.rollout.tools);  // answers a tool printed do not count
    // TRL's completion_ids and trainer_state, for the python and http reward kinds (python_reward.h).
    if (in.back().reference.is_object()) {
      in.back().reference["completion_ids"] = c.token_ids;
      in.back().reference["trainer_state"] = state;
    }
  }
  d.scored = rewards_.score(in);
}

// How many groups the step trains on: the first `take` kept groups in draw order. With several
// ranks every rank takes the same number (the smallest rank's), so all run the same micro-batches.
// None kept: trains on draw 0 unfiltered (its keep flags set, all others cleared).
int64_t GrpoStage::groups_to_train(Draws& draws, int64_t B) const {
  const bool dynamic = cfg_.grpo.dynamic_sampling;
  const bool multi_rank = dist_ && dist_->world_size() > 1;
  int64_t take = std::min(draws.kept, B);
  if (dynamic && multi_rank) take = static_cast<int64_t>(dist_->all_reduce(static_cast<double>(take), dist::ReduceOp::MIN));
  const bool main = !dist_ || dist_->is_main();
  if (dynamic && take == 0) {
    for (auto& d : draws.draws) d.keep.assign(d.keep.size(), false);
    draws.draws[0].keep.assign(static_cast<size_t>(B), true);
    take = B;
    if (main)
      log::warn(str("dynamic sampling: step ", step_ + 1, ": no group with reward variance in ", draws.draws.size(),
                    " draw(s) (grpo.max_resample_rounds = ", cfg_.grpo.max_resample_rounds, "); training on the first draw"));
  } else if (dynamic && take < B && main) {
    log::warn(str("dynamic sampling: step ", step_ + 1, ": ", take, " of ", B, " groups with reward variance after ",
                  draws.draws.size() - 1, " extra draw(s) (grpo.max_resample_rounds = ", cfg_.grpo.max_resample_rounds,
                  "); training on those"));
  }
  return take;
}

// Group-relative advantages of gen's completions (a masked row's NaN reward is left out of its
// group's stats and gets advantage 0) and gen.row_valid (0 for masked rows: left out of the loss).
AdvantageResult GrpoStage::group_advantages(Generation& gen, const reward::RewardSetResult& scored) const {
  const auto t = reward_tensors(scored, gen.completions);
  const auto N = static_cast<int64_t>(gen.completions.size());
  gen.row_valid = torch::ones({N}, torch::kFloat32);
  auto valid = gen.row_valid.accessor<float, 1>();
  for (int64_t i = 0; i < N; ++i)
    if (scored.masked[static_cast<size_t>(i)] != 0) valid[i] = 0.0f;
  gen.rewards = scored.total;
  gen.masked = scored.masked;
  auto adv = compute_advantages(t.rewards, t.prompt_index, cfg_.grpo.scale_rewards, cfg_.grpo.advantage_eps);
  gen.advantages = adv.advantages.to(torch::kFloat32);
  return adv;
}

// Metrics of the batch's rewards: TRL's reward, reward_std and frac_reward_zero_std, each reward
// function's mean and std, the reward functions' counters, accuracy, and the advantages' stats.
void GrpoStage::put_reward_metrics(StepMetrics& m, const reward::RewardSetResult& scored,
                                   const AdvantageResult& adv) {
  m.add_mean("reward", adv.reward_mean);
  m.add_mean("reward_std", adv.reward_std);
  m.add_mean("frac_reward_zero_std", adv.frac_zero_std);
  const auto masked_rows = std::count_if(scored.masked.begin(), scored.masked.end(), [](uint8_t x) { return x != 0; });
  m.add_sum("rewards/masked_rows", static_cast<double>(masked_rows));
  m.add_sum("rewards/problems", static_cast<double>(scored.problems.size()));
  for (const auto& [k, v] : scored.counters) m.add_sum("rewards/" + k, v);  // counts of work done
  for (size_t f = 0; f < scored.names.size(); ++f)
    put_mean_std(m, "rewards/" + scored.names[f], std::vector<double>(scored.per_function[f].begin(), scored.per_function[f].end()));
  auto correctness = correctness_functions(cfg_.reward);
  if (!correctness.empty()) {
    auto ok = correct_rows(scored, correctness);
    double acc = 0;
    for (auto o : ok) acc += o;
    m.add_mean("accuracy", acc / static_cast<double>(ok.size()));
  }
  const auto a = adv.advantages.to(torch::kCPU, torch::kFloat32).contiguous();  // [N] float32, as trained on
  put_stats(m, "advantages", std::vector<double>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel()));
}

// Metrics of the completions: lengths, the fraction truncated, tokens (prompt + completion).
void GrpoStage::put_completion_metrics(StepMetrics& m, const Generation& gen) const {
  std::vector<double> lens;
  int64_t truncated = 0, tokens = 0;
  for (const auto& c : gen.completions) {
    lens.push_back(c.completion_length);
    truncated += c.finish_reason == rollout::FinishReason::LENGTH;
    tokens += c.completion_length + c.prompt_length;
  }
  put_stats(m, "completions/length", lens);
  const auto n = static_cast<double>(gen.completions.size());
  m.add_mean("completions/truncated_ratio", static_cast<double>(truncated) / n);
  m.add_sum("tokens_per_generation", static_cast<double>(tokens));
  if (cfg_.rollout.tools.on()) put_tool_metrics(m, gen.completions, gen.rewards, gen.masked);
}

// Micro-batches of per_device_train_batch_size completions, in completion order, and the number of
// completion tokens in the loss. Rows left out of the loss: masked by a reward function, or truncated
// (finish_reason LENGTH) when grpo.mask_truncated_completions asks.
void GrpoStage::build_micro_batches(Generation& gen) const {
  const auto N = static_cast<int64_t>(gen.completions.size());
  const int64_t mb = settings_.per_device_train_batch_size;
  const int64_t pad = policy_.tokenizer->special().pad.value_or(policy_.eos_ids.empty() ? 0 : static_cast<int32_t>(policy_.eos_ids[0]));
  gen.num_tokens = 0;
  for (int64_t s = 0; s < N; s += mb) {
    const int64_t rows = std::min(N, s + mb) - s;
    std::vector<const std::vector<int64_t>*> ps, cs;
    std::vector<const std::vector<uint8_t>*> injected;  // tool outputs: context, not actions
    auto truncated = torch::zeros({rows}, torch::kBool);  // [rows] finish_reason LENGTH
    auto tr = truncated.accessor<bool, 1>();
    for (int64_t i = 0; i < rows; ++i) {
      const auto& c = gen.completions[static_cast<size_t>(s + i)];
      ps.push_back(&gen.prompt_ids[static_cast<size_t>(c.prompt_index)]);
      cs.push_back(&c.token_ids);
      injected.push_back(&c.tool_mask);
      tr[i] = c.finish_reason == rollout::FinishReason::LENGTH;
    }
    // Assembled on the host, where its token count costs no device sync, then moved.
    auto tb = make_token_batch(ps, cs, pad, torch::kCPU, injected);
    tb.completion_mask = tb.completion_mask * gen.row_valid.narrow(0, s, rows).unsqueeze(1);
    if (cfg_.grpo.mask_truncated_completions) tb.completion_mask = mask_truncated(tb.completion_mask, truncated);
    gen.num_tokens += tb.completion_mask.sum().item<double>();  // [B, C] float32 on the CPU
    const auto dev = policy_.model->device();
    for (auto* t : {&tb.input_ids, &tb.attention_mask, &tb.completion_ids, &tb.completion_mask}) *t = t->to(dev);
    std::vector<const std::vector<float>*> rl;
    for (int64_t i = 0; i < rows; ++i) rl.push_back(&gen.completions[static_cast<size_t>(s + i)].logprobs);
    gen.rollout_logprobs.push_back(rollout_logprob_matrix(rl, tb.completion_ids.size(1)).to(dev));
    gen.micro.push_back(std::move(tb));
  }
}

// Log-probs under the sampling policy (num_iterations > 1: the ratio's denominator in later
// iterations) and under the reference model (the KL term), per micro-batch, without gradient.
void GrpoStage::old_and_ref_logprobs(Generation& gen, StepMetrics& m) {
  auto t0 = std::chrono::steady_clock::now();
  if (cfg_.grpo.num_iterations > 1)
    for (auto& tb : gen.micro) gen.old_logprobs.push_back(no_grad_logprobs(policy_.model, tb));
  if (ref_ || ref_is_base_)
    for (auto& tb : gen.micro) gen.ref_logprobs.push_back(reference_logprobs(tb));
  m.add_mean("time/logprobs", seconds_since(t0));
}

// logging.num_completions_to_print samples every logging.log_completions_steps steps.
void GrpoStage::log_completion_samples(const Generation& gen, const GroupBatch& batch) const {
  if (!metrics_log_ || cfg_.logging.log_completions_steps <= 0 || step_ % cfg_.logging.log_completions_steps != 0) return;
  const auto& scored = batch.scored;
  const auto N = static_cast<int64_t>(gen.completions.size());
  const float* adv = gen.advantages.data_ptr<float>();  // [N] float32, CPU
  std::vector<nlohmann::json> samples;
  for (int64_t i = 0; i < std::min<int64_t>(N, cfg_.logging.num_completions_to_print); ++i) {
    const auto& c = gen.completions[static_cast<size_t>(i)];
    nlohmann::json s = {{"prompt", batch.prompt_texts[static_cast<size_t>(c.prompt_index)]},
                        {"completion", c.text},
                        {"finish_reason", std::string(rollout::finish_reason_name(c.finish_reason))},
                        {"reward", scored.total[static_cast<size_t>(i)]},
                        {"advantage", static_cast<double>(adv[i])}};
    for (size_t f = 0; f < scored.names.size(); ++f) s["rewards"][scored.names[f]] = scored.per_function[f][static_cast<size_t>(i)];
    samples.push_back(std::move(s));
  }
  metrics_log_->log_samples(step_ + 1, samples);
}

// async_rollout: on, rollout thread: generation g sampled by the snapshot `snap` (the weights of
// version schedule.version_of(g)), scored, with its advantages, metrics and micro-batches: what
// generate() does before the log-probs. It reads the loader, which only this thread then touches.
std::unique_ptr<GrpoStage::Pending> GrpoStage::produce_generation(int64_t g, Snapshot& snap) {
  const int64_t completions_per_step = int64_t(settings_.per_device_train_batch_size) * cfg_.trainer.gradient_accumulation_steps;
  const int64_t B = completions_per_step / cfg_.grpo.num_generations;
  StepMetrics m;
  auto p = std::make_unique<Pending>();
  p->batch = select_groups(B, m, RollCtx{snap.engine.get(), g, g});  // num_iterations 1: step g trains on it
  p->data_after = loader_->position();
  auto gen = std::make_unique<Generation>();
  gen->records = std::move(p->batch.records);
  gen->prompt_ids = std::move(p->batch.prompt_ids);
  gen->completions = std::move(p->batch.completions);
  const auto adv = group_advantages(*gen, p->batch.scored);
  put_reward_metrics(m, p->batch.scored, adv);
  put_completion_metrics(m, *gen);
  build_micro_batches(*gen);
  p->metrics = m.local();
  p->gen = std::move(gen);
  return p;
}

// Async: the rollout thread draws ahead; a checkpoint resumes at the first prompt not trained on.
// At a periodic checkpoint (a drain step) the thread has not drawn for that step yet, so this is
// also the loader's own position; a stop-signal save between them drops the drawn-ahead prompts'
// generations, and the resumed run samples them again from the saved weights.
data::LoaderPosition GrpoStage::data_position() const { return async_ ? consumed_ : loader_->position(); }

void GrpoStage::start_async() {
  consumed_ = loader_->position();  // before the thread starts drawing
  AsyncSchedule sched{cfg_.grpo.max_staleness, step_, cfg_.checkpoint.save_steps, settings_.max_steps};
  const int threads = torch::get_num_threads();  // the trainer's intra-op threads; the rollout thread gets as many
  auto make = [this] {
    auto s = std::make_unique<Snapshot>();
    s->model = clone_frozen(policy_.model);
    model::apply_kernels(*s->model, cfg_.kernels, /*log_line=*/false);
    s->engine = std::make_unique<rollout::RolloutEngine>(s->model, *policy_.tokenizer, cfg_.rollout);
    s->engine->set_bf16(cfg_.trainer.bf16);
    return s;
  };
  async_ = std::make_unique<AsyncRollout<Pending, Snapshot>>(
      sched, make, [this](Snapshot& s) { copy_weights(s.model, policy_.model); },
      [this](int64_t g, Snapshot& s) { return produce_generation(g, s); }, [threads] { torch::set_num_threads(threads); });
}

// async_rollout: on, trainer thread: publishes this step's weights (when a later generation
// samples from them), takes this step's generation from the rollout thread, and finishes it as
// generate() does (old and reference log-probs, samples), with the staleness and wait metrics.
void GrpoStage::take_generation(StepMetrics& m) {
  if (!async_) start_async();
  async_->publish(step_);
  auto r = async_->take(generations_);
  const int64_t staleness = step_ - r.version;
  GRPO_CHECK(staleness >= 0 && staleness <= cfg_.grpo.max_staleness, "async rollout: generation ", r.generation,
             " sampled by version ", r.version, " at step ", step_);
  auto& p = *r.value;
  for (const auto& [k, v] : p.metrics) m.add_mean(k, v);  // world size 1: the rollout side's values
  const auto n = static_cast<double>(p.gen->completions.size());
  m.add_mean("async/staleness", static_cast<double>(staleness));
  m.add_sum(str("async/completions_at_staleness_", staleness), n);  // over steps: the staleness histogram
  m.add_mean("async/trainer_wait_s", r.trainer_wait_s);
  m.add_mean("async/rollout_wait_s", r.rollout_wait_s);
  m.add_mean("async/snapshots", static_cast<double>(async_->snapshots_held()));
  p.gen->policy_version = r.version;
  consumed_ = p.data_after;
  old_and_ref_logprobs(*p.gen, m);
  log_completion_samples(*p.gen, p.batch);
  gen_ = std::move(p.gen);
  ++generations_;
}

bool GrpoStage::train_step(std::map<std::string, double>& m) {
  StepMetrics sm;
  if (iteration_ == 0) generate(sm);
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

  // The step's losses and the loss metrics stay on the device until the one copy that reads them.
  torch::Tensor loss_total, aux_total;  // [] float64, summed in micro-batch order
  int64_t row = 0;
  const size_t nmb = gen.micro.size();
  const double aux_coef = policy_.model->spec().moe.num_experts > 0 ? policy_.model->spec().moe.router_aux_loss_coef : 0.0;
  // Off-policy correction (rollout_correction.h) when this generation was sampled by an older
  // version than the update's old policy (step_ - iteration_); otherwise w = 1: no weights at all.
  const auto corr = RolloutCorrectionOptions::from_config(cfg_.grpo);
  const bool stale = gen.policy_version < step_ - iteration_ && corr.mode != config::RolloutCorrection::NONE;
  OffPolicyMetrics offpolicy;
  for (size_t k = 0; k < nmb; ++k) {
    auto& tb = gen.micro[k];
    const int64_t rows = tb.completion_ids.size(0);
    if (reducer_) reducer_->set_sync(k + 1 == nmb);
    auto lp = completion_logprobs(policy_.model, tb, cfg_.rollout.temperature, cfg_.trainer.bf16,
                                  cfg_.kernels.logprob_chunk_size);
    LossInputs in;
    in.logprobs = lp.logprobs;
    if (!gen.old_logprobs.empty()) in.old_logprobs = gen.old_logprobs[k];
    if (!gen.ref_logprobs.empty()) in.ref_logprobs = gen.ref_logprobs[k];
    in.advantages = gen.advantages.narrow(0, row, rows).to(lp.logprobs.device());
    in.completion_mask = tb.completion_mask;
    if (cfg_.grpo.entropy_coef > 0) in.entropies = lp.entropies;
    if (stale) {
      auto rc = rollout_correction(in.old_logprobs.defined() ? in.old_logprobs : lp.logprobs.detach(),
                                   gen.rollout_logprobs[k], tb.completion_mask, {}, corr);
      in.rollout_is_weights = rc.weights;
      offpolicy.add_correction(rc, rows);
    }
    auto res = compute_loss(in, opt, norm);
    auto loss = res.loss;
    if (aux_coef > 0) {
      // The aux loss is a mean over this micro-batch's tokens: weight micro-batches by their rows.
      auto aux = lp.aux_loss * (aux_coef * static_cast<double>(rows) / N);
      loss = loss + aux;
      sum_into(aux_total, aux);
    }
    sum_into(loss_total, res.loss);
    loss.backward();
    const auto& lm = res.metrics;
    sm.add_mean("clip_ratio/low", lm.clip_low_sum, lm.clip_count);
    sm.add_mean("clip_ratio/high", lm.clip_high_sum, lm.clip_count);
    sm.add_mean("clip_ratio/region", lm.clip_region_sum, lm.clip_count);
    if (ref_ || ref_is_base_) sm.add_mean("kl", lm.kl_sum, lm.token_count);
    if (iteration_ == 0) {
      // Before this generation's first optimizer step the trainer's log-probs are the old policy's,
      // recomputed: their distance to the sampler's own log-probs is kernel/precision mismatch, plus
      // the policy's drift when the generation is stale.
      offpolicy.add_mismatch(lp.logprobs, gen.rollout_logprobs[k], tb.completion_mask);
    }
    {
      torch::NoGradGuard ng;
      auto msk = tb.completion_mask.to(torch::kFloat32);
      sm.add_mean("entropy", (lp.entropies.detach() * msk).sum(), msk.sum());
    }
    row += rows;
  }
  offpolicy.put(sm);
  sm.add_mean("loss", loss_total);  // summed over micro-batches, averaged over ranks
  if (aux_coef > 0) sm.add_mean("moe/aux_loss", aux_total);
  // The step's one device-to-host copy. The sum of the micro-batch losses (float32, summed in
  // float64: no overflow) is finite exactly when each of them is.
  bool finite = std::isfinite(sm.value("loss"));
  double norm_val = 0;
  finite = ranks_agree_finite(finite);
  if (finite) {
    norm_val = apply_gradients(sm);
  } else {
    discard_gradients();
    sm.add_mean("learning_rate", settings_.learning_rate * schedule_->factor(step_));
    sm.add_mean("grad_norm", NAN);
  }
  sm.add_mean("time/update", seconds_since(t0));

  iteration_ = (iteration_ + 1) % cfg_.grpo.num_iterations;
  if (iteration_ == 0) gen_.reset();
  if (ref_ && cfg_.grpo.ref_model_sync_steps > 0 && (step_ + 1) % cfg_.grpo.ref_model_sync_steps == 0)
    ref_shards_ ? ref_shards_->sync_from(*sharder_, policy_.model) : copy_weights(ref_, policy_.model);

  for (const auto& [k, v] : reduce_metrics(sm)) m[k] = v;
  if (auto tr = m.find("completions/truncated_ratio"); tr != m.end() && (!dist_ || dist_->is_main()))
    if (auto w = truncation_warning_.observe(step_ + 1, tr->second); !w.empty()) log::warn(w);
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
