#include "grpo/train/stage_runner.h"

#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>

#include "grpo/data/prompt.h"
#include "grpo/dist/rank_rng.h"
#include "grpo/dist/sharding.h"
#include "grpo/train/lora_policy.h"
#include "grpo/model/block.h"
#include "grpo/reward/registry.h"
#include "grpo/util/cpu_features.h"
#include "grpo/util/log.h"
#include "grpo/util/progress.h"

namespace grpo::train {

std::atomic<int> g_stop_signal{0};

namespace {
void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process the usual way
}

std::string to_hex(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kCPU);
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(static_cast<size_t>(c.nbytes()) * 2);
  for (int64_t i = 0; i < c.nbytes(); ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}
torch::Tensor from_hex(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size() / 2)}, torch::kUInt8);
  auto* p = t.data_ptr<uint8_t>();
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < s.size(); i += 2) p[i / 2] = static_cast<uint8_t>(v(s[i]) << 4 | v(s[i + 1]));
  return t;
}
}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

std::vector<tok::ChatMessage> prompt_messages(const data::Record& r, const config::Config& cfg) {
  std::vector<tok::ChatMessage> out;
  for (auto& m : data::render_prompt(r, dataset_config(cfg))) out.push_back({m.role, m.content});
  return out;
}

config::DataConfig dataset_config(const config::Config& cfg) {
  config::DataConfig dc = cfg.data;
  // The answer is required only when a reward reads it (a length-only run needs no answers).
  if (!reward::reference_fields(cfg.reward).count(dc.answer_field)) dc.answer_field.clear();
  return dc;
}

std::unique_ptr<data::Dataset> load_prompt_dataset(const std::string& path, const config::Config& cfg,
                                                   const Policy& policy) {
  GRPO_REQUIRE(!path.empty(), "data.train_file is empty: give a JSONL file, or set task.name to generate one");
  auto ds = std::make_unique<data::Dataset>(data::Dataset::load(path, dataset_config(cfg)));
  int64_t dropped = ds->drop_long_prompts(
      [&](const data::Record& r) { return static_cast<int64_t>(encode_prompt(policy, prompt_messages(r, cfg)).size()); },
      cfg.data.max_prompt_length);
  if (dropped > 0)
    log::warn(str(path, ": dropped ", dropped, " prompt(s) longer than data.max_prompt_length = ", cfg.data.max_prompt_length,
                  " tokens"));
  if (ds->num_skipped() > 0) log::warn(str(path, ": skipped ", ds->num_skipped(), " malformed record(s)"));
  GRPO_REQUIRE(ds->size() > 0, path, ": no usable record left");
  return ds;
}

namespace {
// trainer.bf16 on the CPU: which bf16 arithmetic oneDNN has here, once per run (a pipeline builds
// one StageRunner per stage). Emulated bf16 is correct but slower than float32: a warning.
void log_cpu_bf16_path() {
  static std::once_flag once;
  std::call_once(once, [] {
    const auto path = util::bf16_path();
    if (util::bf16_slower_than_float32(path))
      log::warn(str("trainer.bf16: this CPU has no bf16 instructions (no avx512_bf16/amx_bf16): bf16 products run "
                    "emulated, slower than float32; set trainer.bf16: false"));
    else
      log::info(str("trainer.bf16: bf16 autocast on the CPU, products on ", util::bf16_path_name(path),
                    "; master weights, optimizer state and log-probs float32"));
  });
}
}  // namespace

StageRunner::StageRunner(const config::Config& cfg, StageSettings settings, Policy& policy,
                         std::shared_ptr<dist::Distributed> dist)
    : cfg_(cfg), settings_(std::move(settings)), policy_(policy), dist_(std::move(dist)) {
  std::filesystem::create_directories(settings_.dir);
  train_data_ = load_prompt_dataset(cfg_.data.train_file, cfg_, policy_);
  loader_ = std::make_unique<data::Loader>(*train_data_, static_cast<uint64_t>(cfg_.trainer.seed), cfg_.data.shuffle);
  // Memory and precision switches of the training forwards (the model's math is unchanged).
  policy_.model->set_gradient_checkpointing(cfg_.trainer.gradient_checkpointing);
  if (cfg_.trainer.bf16 && policy_.model->device().is_cpu()) log_cpu_bf16_path();

  // Decoupled weight decay on matrices only (transformers skips biases and norm weights).
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : policy_.model->parameters())
    if (p.requires_grad()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto opts = torch::optim::AdamWOptions(settings_.learning_rate)
                  .betas({cfg_.optimizer.adam_beta1, cfg_.optimizer.adam_beta2})
                  .eps(cfg_.optimizer.adam_epsilon)
                  .weight_decay(cfg_.optimizer.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts));
  auto nd = opts;
  nd.weight_decay(0.0);
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(nd));
  optimizer_ = std::make_unique<torch::optim::AdamW>(groups, opts);
  schedule_ = std::make_unique<LrSchedule>(LrSchedule::from_config(cfg_.optimizer, settings_.max_steps));
  if (dist_ && cfg_.distributed.sharding != config::ShardingMode::NONE) {
    // The sharder owns the AdamW state of its slices; optimizer_ above is never stepped then.
    GRPO_REQUIRE(!(cfg_.distributed.sharding == config::ShardingMode::FULL && cfg_.grpo.async_rollout == config::AsyncRolloutMode::ON),
                 "distributed.sharding: full with grpo.async_rollout: on is not supported (the rollout thread would copy "
                 "the policy's weights, which no rank holds whole); use sharding optimizer or async_rollout off");
    sharder_ = std::make_unique<dist::Sharder>(
        dist_, policy_.model, dist::ShardOptions::from_config(cfg_.distributed, cfg_.optimizer, cfg_.trainer.bf16));
    log::info(sharder_->describe());
  } else if (dist_ && dist_->world_size() > 1) {
    std::vector<torch::Tensor> params;
    for (auto& p : policy_.model->parameters()) params.push_back(p);
    reducer_ = std::make_unique<dist::GradientReducer>(dist_, params,
                                                       dist::GradReducerOptions::from_config(cfg_.distributed));
    log::info(reducer_->describe());
  }
}

StageRunner::~StageRunner() = default;

void StageRunner::try_resume() {
  std::optional<std::string> path = find_resume(settings_.resume, settings_.dir);
  std::optional<std::string> history;
  GRPO_REQUIRE(path || settings_.finished_steps < 0, "stage ", config::enum_name(settings_.kind), " finished at ",
               settings_.finished_steps, " steps but ", settings_.dir, "/checkpoints holds no valid checkpoint to continue from",
               " (to train ", settings_.max_steps, " steps from the start, pass --overwrite or choose another trainer.output_dir)");
  if (path) {
    auto loaded = load_checkpoint_tensors(*path);
    const auto& st = loaded.state;
    step_ = st.step;
    loader_->set_position(st.data);
    history = st.metrics_jsonl;
    restore_rank_rng(st, *path);
    nonfinite_total_ = st.extra.value("nonfinite_steps", int64_t{0});
    restore_extra_state(st.extra.value("stage", nlohmann::json::object()));
    log::info(str("resumed from ", *path, " at step ", step_));
    // The schedule is recomputed over this run's max_steps (as transformers' Trainer does when it
    // resumes with a larger max_steps): docs/checkpoints.md, "Extending a finished run".
    const int64_t saved_total = st.scheduler.value("total", schedule_->total_steps());
    if (saved_total != schedule_->total_steps())
      log::info(str("learning-rate schedule over ", schedule_->total_steps(), " steps (the checkpoint's run planned ",
                    saved_total, "): recomputed over the new total"));
  }
  if (!dist_ || dist_->is_main()) metrics_log_ = std::make_unique<MetricsLogger>(settings_.dir, cfg_.logging.report_to, history);
}

namespace {
// Names of the trainable parameters (what a Sharder shards); the other checkpointed weights
// (buffers, frozen ones) are replicated on every rank.
std::set<std::string> trainable_names(model::Transformer& model) {
  std::set<std::string> out;
  for (const auto& p : model->named_parameters(/*recurse=*/true))
    if (p.value().requires_grad()) out.insert(p.key());
  return out;
}
}  // namespace

LoadedCheckpoint StageRunner::load_checkpoint_tensors(const std::string& path) {
  if (!sharder_) return load_checkpoint(path, checkpoint_weights(policy_.model), optimizer_.get());
  // Sharded: each rank reads the pieces overlapping its own slices (any world size and sharding
  // mode wrote them), and the replicated weights whole.
  GRPO_REQUIRE(is_sharded_checkpoint(path), "checkpoint '", path, "' is in the first format (model.safetensors + ",
               "optimizer.pt): resume it once with distributed.sharding: none, which saves the sharded format");
  auto loaded = load_checkpoint_state(path);
  ShardReader reader(path);
  sharder_->load_shards([&](const std::string& key, int64_t begin, torch::Tensor dst) { reader.read_into(key, begin, dst); },
                        [&](const std::string& param) { return reader.optimizer_step(param); });
  const auto sharded = trainable_names(policy_.model);
  torch::NoGradGuard ng;
  for (const auto& [n, t] : checkpoint_weights(policy_.model)) {
    if (sharded.count(n)) continue;
    const TensorMeta* m = reader.find(n);
    GRPO_REQUIRE(m && m->shape == t.sizes().vec(), "checkpoint '", path, "': weight '", n, "' is ",
                 m ? "of another shape" : "missing", " (the model's is ", t.sizes(), ")");
    reader.read_into(n, 0, t);
  }
  return loaded;
}

void StageRunner::restore_rank_rng(const TrainState& st, const std::string& path) {
  // One RNG state per rank of the writing run (its world size). Rank r continues rank r's stream
  // when the writer had one; a rank beyond it (more processes now) seeds from (seed, rank, step).
  // This generator feeds only per-rank draws (LoRA dropout); the rollout's sampling streams are
  // counter-based and keyed by the prompt's place in the global batch, so they do not depend on it
  // (docs/distributed.md, "Checkpoints and resharding").
  const int rank = dist_ ? dist_->rank() : 0, world = dist_ ? dist_->world_size() : 1;
  const int saved = st.rng.empty() ? world : static_cast<int>(st.rng.size());
  if (rank < static_cast<int>(st.rng.size())) restore_rng_state(st.rng[static_cast<size_t>(rank)]);
  else torch::manual_seed(dist::derive_seed(static_cast<uint64_t>(cfg_.trainer.seed), rank, static_cast<uint64_t>(st.step)));
  if (saved == world) return;
  const int64_t batch = st.extra.value("per_device_train_batch_size", int64_t{0});
  log::info(str("checkpoint ", path, " was written by ", saved, " process(es), this run has ", world,
                ": resharded (each rank read its part of every tensor)"));
  if (batch > 0 && batch * saved != int64_t{settings_.per_device_train_batch_size} * world)
    log::warn(str("the global batch changes from ", batch, " x ", saved, " to ", settings_.per_device_train_batch_size,
                  " x ", world, " per step: set trainer.per_device_train_batch_size to ", batch * saved, " / ", world,
                  " to continue the same run"));
}

void StageRunner::save(const std::string& why) {
  // Every rank contributes its RNG state (gathered into rank 0's rng.pt) and its pieces: with a
  // sharder its slices plus, from rank 0, the replicated weights; without, rank 0 everything.
  RngState mine = capture_rng_state();
  std::vector<RngState> all{mine};
  if (dist_ && dist_->world_size() > 1) {
    auto gathered = dist_->all_gather_string(to_hex(mine.cpu));
    all.clear();
    for (const auto& s : gathered) all.push_back(RngState{from_hex(s), {}});
    all[static_cast<size_t>(dist_->rank())] = mine;
  }
  const bool main = !dist_ || dist_->is_main();
  LocalShards pieces;
  if (sharder_) {
    auto s = sharder_->local_shards();
    for (auto& p : s.weights) pieces.weights.push_back({p.key, p.shape, p.begin, p.end, p.data});
    for (auto& p : s.optimizer) pieces.optimizer.push_back({p.key, p.shape, p.begin, p.end, p.data});
    pieces.optimizer_step = s.optimizer_step;
    const auto sharded = trainable_names(policy_.model);
    if (main)
      for (const auto& [n, t] : checkpoint_weights(policy_.model))
        if (!sharded.count(n)) pieces.weights.push_back({n, t.sizes().vec(), 0, t.numel(), t});
  } else if (main) {
    pieces = replicated_shards(checkpoint_weights(policy_.model), optimizer_.get());
  }
  TrainState st;
  st.step = step_;
  st.stage = std::string(config::enum_name(settings_.kind));
  st.data = data_position();
  st.scheduler = {{"kind", std::string(config::enum_name(schedule_->kind()))},
                  {"warmup", schedule_->warmup_steps()},
                  {"total", schedule_->total_steps()}};
  if (main) {
    st.config_yaml = config::dump_config(cfg_);
    st.metrics_jsonl = metrics_log_ ? metrics_log_->history() : "";
  }
  st.extra = {{"nonfinite_steps", nonfinite_total_},
              {"stage", extra_state()},
              {"per_device_train_batch_size", settings_.per_device_train_batch_size}};
  st.rng = all;
  auto dir = save_checkpoint(settings_.dir, st, pieces, dist_.get(), std::string(config::enum_name(cfg_.distributed.sharding)),
                             cfg_.checkpoint.save_total_limit);
  if (main) log::info(str("saved checkpoint ", dir, " (", why, ")"));
}

double StageRunner::apply_gradients(StepMetrics& metrics) {
  if (sharder_) return apply_sharded_gradients(metrics);
  if (reducer_) {
    // The wait for the gradient all-reduce that backward did not hide (buckets still in flight).
    auto t0 = std::chrono::steady_clock::now();
    reducer_->synchronize();
    metrics.add_mean("time/grad_sync", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<torch::Tensor> params;
  for (auto& p : policy_.model->parameters())
    if (p.requires_grad() && p.grad().defined()) params.push_back(p);
  double max_norm = cfg_.optimizer.max_grad_norm > 0 ? cfg_.optimizer.max_grad_norm : INFINITY;
  double norm = params.empty() ? 0.0 : torch::nn::utils::clip_grad_norm_(params, max_norm);
  metrics.add_mean("grad_norm", norm);
  double lr = settings_.learning_rate * schedule_->factor(step_);
  metrics.add_mean("learning_rate", lr);
  if (!std::isfinite(norm)) {
    optimizer_->zero_grad();
    return norm;
  }
  for (auto& g : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  optimizer_->step();
  optimizer_->zero_grad();
  const auto& moe = policy_.model->spec().moe;
  if (reducer_ && moe.num_experts > 0 && moe.bias_update_speed > 0) sum_expert_load_over_ranks();
  policy_.model->update_expert_bias();
  return norm;
}

double StageRunner::apply_sharded_gradients(StepMetrics& metrics) {
  // Reduce-scatter, global-norm clipping and AdamW on this rank's slices (dist/sharding.h).
  const double lr = settings_.learning_rate * schedule_->factor(step_);
  const double norm = sharder_->step(lr, cfg_.optimizer.max_grad_norm);
  metrics.add_mean("grad_norm", norm);
  metrics.add_mean("learning_rate", lr);
  if (!std::isfinite(norm)) return norm;
  const auto& moe = policy_.model->spec().moe;
  if (dist_->world_size() > 1 && moe.num_experts > 0 && moe.bias_update_speed > 0) sum_expert_load_over_ranks();
  policy_.model->update_expert_bias();
  return norm;
}

StageRunner::WholeWeights::WholeWeights(dist::Sharder* s) : sharder(s) {
  if (sharder) sharder->gather_full();
}
StageRunner::WholeWeights::~WholeWeights() {
  if (sharder) sharder->release_full();
}

bool StageRunner::ranks_agree_finite(bool finite) {
  if (!dist_ || dist_->world_size() <= 1) return finite;
  return dist_->all_reduce(finite ? 1.0 : 0.0, dist::ReduceOp::MIN) > 0.5;
}

void StageRunner::discard_gradients() {
  if (reducer_) reducer_->synchronize();
  if (sharder_) sharder_->zero_grad();
  policy_.model->zero_grad();
}

void StageRunner::sum_expert_load_over_ranks() {
  std::vector<torch::Tensor*> loads;
  for (const auto& m : policy_.model->layers->children())
    if (auto blk = std::dynamic_pointer_cast<model::BlockImpl>(m); blk && blk->moe) loads.push_back(&blk->moe->pending_load());
  if (loads.empty()) return;
  std::vector<torch::Tensor> parts;
  for (auto* l : loads) parts.push_back(l->to(policy_.model->device(), torch::kFloat32));
  auto flat = torch::cat(parts);  // [layers * E], one collective
  dist_->all_reduce(flat, dist::ReduceOp::SUM);
  int64_t at = 0;
  for (size_t i = 0; i < loads.size(); ++i) {
    *loads[i] = flat.narrow(0, at, parts[i].numel()).clone();
    at += parts[i].numel();
  }
}

std::map<std::string, double> StageRunner::reduce_metrics(StepMetrics& metrics) { return metrics.reduce(dist_.get()); }

bool StageRunner::stop_requested() {
  int sig = g_stop_signal.load();
  // Ranks see a signal at different steps; they must agree, or one would checkpoint (collectives
  // of the save) while the others train (collectives of a step).
  if (dist_ && dist_->world_size() > 1) sig = static_cast<int>(dist_->all_reduce(static_cast<double>(sig), dist::ReduceOp::MAX));
  return sig != 0;
}

StageOutcome StageRunner::run() {
  try_resume();
  policy_.model->train();
  int64_t last_saved = step_;
  const int save_every = cfg_.checkpoint.save_steps;
  // Progress on stderr, main rank only (a terminal: one line rewritten; otherwise a line every
  // logging.progress_steps steps or ~10% of the stage).
  std::optional<util::StepProgress> progress;
  if (!dist_ || dist_->is_main())
    progress.emplace(str("stage ", config::enum_name(settings_.kind)), step_, settings_.max_steps, cfg_.logging.progress_steps);
  while (step_ < settings_.max_steps) {
    if (can_checkpoint() && stop_requested()) {
      if (progress) progress->clear();
      log::warn(str("stop signal received (", g_stop_signal.load() != 0 ? "here" : "by another rank",
                    "): saving a checkpoint at step ", step_, " and stopping"));
      save("interrupted");
      if (sharder_) sharder_->gather_full();  // whole weights for whoever uses the model next
      return StageOutcome::INTERRUPTED;
    }
    std::map<std::string, double> m;
    auto t_step = std::chrono::steady_clock::now();
    bool ok = train_step(m);
    m["time/step"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_step).count();
    if (!ok) {
      ++nonfinite_total_;
      if (++nonfinite_in_a_row_ >= cfg_.trainer.max_consecutive_nonfinite)
        throw Error(str("training diverged: ", nonfinite_in_a_row_, " steps in a row with a non-finite loss or gradient (step ",
                        step_, "); lower optimizer.learning_rate or check the data"));
      if (progress) progress->clear();
      log::warn(str("step ", step_, ": non-finite loss or gradient, update skipped"));
    } else {
      nonfinite_in_a_row_ = 0;
    }
    m["nonfinite_steps"] = static_cast<double>(nonfinite_total_);
    ++step_;
    last_metrics_ = m;
    if (metrics_log_ && step_ % cfg_.logging.logging_steps == 0) metrics_log_->log(step_, m);
    if (progress) {
      std::vector<std::pair<std::string, double>> shown;
      for (const char* k : {"loss", "reward", "accuracy"})
        if (auto it = m.find(k); it != m.end()) shown.emplace_back(k, it->second);
      progress->update(step_, shown);
    }
    if (save_every > 0 && step_ - last_saved >= save_every && step_ < settings_.max_steps && can_checkpoint()) {
      if (progress) progress->clear();
      save("every " + std::to_string(save_every) + " steps");
      last_saved = step_;
    }
  }
  if (last_saved != step_ || step_ == 0) save("end of stage");
  if (sharder_) sharder_->gather_full();  // the final weights are written from the model
  return StageOutcome::FINISHED;
}

}  // namespace grpo::train
