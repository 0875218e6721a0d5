#include "grpo/train/pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "grpo/data/tasks.h"
#include "grpo/dist/distributed.h"
#include "grpo/dist/fingerprint.h"
#include "grpo/dist/rollout_ranks.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/reward/reward_set.h"
#include "grpo/tokenizer/sentencepiece_tokenizer.h"
#include "grpo/train/grpo_stage.h"
#include "grpo/train/lora_policy.h"
#include "sft_stage.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;

nlohmann::json eval_to_json(const EvalResult& e) {
  return {{"num_prompts", e.num_prompts}, {"accuracy", e.accuracy}, {"pass_at_k", e.pass_at_k}, {"k", e.k},
          {"reward_means", e.reward_means}, {"mean_completion_length", e.mean_completion_length},
          {"has_accuracy", e.has_accuracy}};
}
EvalResult eval_from_json(const nlohmann::json& j) {
  EvalResult e;
  e.num_prompts = j.value("num_prompts", int64_t{0});
  e.accuracy = j.value("accuracy", 0.0);
  e.pass_at_k = j.value("pass_at_k", 0.0);
  e.k = j.value("k", 1);
  e.reward_means = j.value("reward_means", std::map<std::string, double>{});
  e.mean_completion_length = j.value("mean_completion_length", 0.0);
  e.has_accuracy = j.value("has_accuracy", false);
  return e;
}

// Trains a sentencepiece tokenizer on the task's text when the config asks for one.
void prepare_tokenizer(const config::Config& cfg) {
  const auto& path = cfg.tokenizer.path;
  if (cfg.task.tokenizer_vocab_size <= 0 || path.empty() || sfs::exists(path)) return;
  GRPO_REQUIRE(path.size() > 6 && path.substr(path.size() - 6) == ".model", "tokenizer.path '", path,
               "' must end in .model to be trained from task data (task.tokenizer_vocab_size > 0)");
  sfs::create_directories(sfs::path(path).parent_path());
  std::string corpus = path + ".corpus.txt";
  {
    std::ofstream out(corpus);
    std::ifstream in(cfg.data.train_file);
    for (std::string line; std::getline(in, line);) {
      auto row = nlohmann::json::parse(line);
      for (const char* f : {"prompt", "solution"})
        if (row.contains(f) && row[f].is_string()) out << row[f].get<std::string>() << "\n";
    }
  }
  tok::SentencePieceTrainOptions opt;
  opt.input = corpus;
  opt.model_prefix = path.substr(0, path.size() - 6);
  opt.vocab_size = cfg.task.tokenizer_vocab_size;
  // The corpus is read line by line, so sentencepiece never sees a newline: make it a piece of its
  // own, or programs in answers (and "</think>\n<answer>") would lose their line breaks.
  opt.user_defined_symbols = {"<think>", "</think>", "<answer>", "</answer>", "\n"};
  opt.seed = static_cast<uint32_t>(cfg.task.seed);
  // A generated task's alphabet is closed and every character of it is in the corpus, so the 256
  // byte pieces of byte_fallback would only crowd out merges in a vocabulary of a few hundred.
  opt.byte_fallback = false;
  opt.character_coverage = 1.0;
  opt.hard_vocab_limit = false;  // a small task corpus may support fewer pieces than asked for
  log::info(str("training a sentencepiece tokenizer (", opt.vocab_size, " pieces) on ", cfg.data.train_file));
  tok::train_sentencepiece(opt);
  sfs::remove(corpus);
}

std::vector<config::StageConfig> stages_of(const config::Config& cfg, bool sft_only) {
  if (!cfg.stages.empty()) return cfg.stages;
  config::StageConfig s;
  s.kind = sft_only ? config::StageKind::SFT : config::StageKind::GRPO;
  return {s};
}

// The key that sets a stage's step count, for messages.
std::string max_steps_key(const config::StageConfig& st, size_t i) {
  return st.max_steps > 0 ? str("stages.", i, ".max_steps") : std::string("trainer.max_steps");
}

// Extending stage i is refused once a later stage has started: that stage trained from stage i's
// old final weights, and continuing stage i would leave it describing weights that no longer exist.
void require_no_later_stage(const sfs::path& out, const std::vector<config::StageConfig>& stages, size_t i,
                            int64_t done, int64_t wanted) {
  for (size_t k = i + 1; k < stages.size(); ++k) {
    const sfs::path later = out / ("stage-" + std::to_string(k + 1) + "-" + std::string(config::enum_name(stages[k].kind)));
    GRPO_REQUIRE(!sfs::exists(later), "stage ", i + 1, " finished at ", done, " steps and the config now asks for ", wanted,
                 ", but stage ", k + 1, " has already trained from its final weights (", later.string(),
                 "): continue the last stage only, or train the longer pipeline into a new trainer.output_dir");
  }
}

}  // namespace

std::pair<std::string, std::string> prepare_task_data(config::Config& cfg, bool force) {
  GRPO_REQUIRE(cfg.task.name != config::TaskName::NONE, "task.name is none: nothing to generate");
  auto dir = sfs::path(cfg.trainer.output_dir) / "data";
  if (cfg.data.train_file.empty()) cfg.data.train_file = (dir / "train.jsonl").string();
  if (cfg.data.eval_file.empty() && cfg.task.num_eval > 0) cfg.data.eval_file = (dir / "eval.jsonl").string();
  bool have = sfs::exists(cfg.data.train_file) && (cfg.data.eval_file.empty() || sfs::exists(cfg.data.eval_file));
  if (force || !have) {
    std::string eval = cfg.data.eval_file.empty() ? (dir / "eval.jsonl").string() : cfg.data.eval_file;
    data::write_task_splits(cfg.task, cfg.data.train_file, eval);
    log::info(str("wrote ", cfg.task.num_train, " training and ", cfg.task.num_eval, " held-out examples of task ",
                  config::enum_name(cfg.task.name), " to ", cfg.data.train_file, " and ", eval));
  }
  return {cfg.data.train_file, cfg.data.eval_file};
}

std::string format_stage_table(const std::vector<StageReport>& stages) {
  // Without a held-out set no stage is evaluated: a header over no rows would look like a failure.
  if (std::none_of(stages.begin(), stages.end(), [](const StageReport& s) { return s.evaluated; }))
    return "no held-out set, so no end-of-run evaluation: set data.eval_file (a JSONL file of prompts with their "
           "reference fields) or, for a built-in task, task.num_eval > 0\n";
  std::ostringstream os;
  os << std::fixed << std::setprecision(3);
  std::vector<std::string> reward_keys;
  for (const auto& s : stages)
    for (const auto& [k, v] : s.eval.reward_means)
      if (std::find(reward_keys.begin(), reward_keys.end(), k) == reward_keys.end()) reward_keys.push_back(k);
  int k = stages.empty() ? 1 : stages.back().eval.k;
  os << "| after stage | steps | held-out accuracy | pass@" << k;
  for (const auto& r : reward_keys) os << " | reward " << r;
  os << " | mean length |\n|---|---|---|---";
  for (size_t i = 0; i < reward_keys.size(); ++i) os << "|---";
  os << "|---|\n";
  for (const auto& s : stages) {
    if (!s.evaluated) continue;
    os << "| " << s.name << " | " << s.steps << " | " << std::setprecision(1) << 100.0 * s.eval.accuracy << "% | "
       << 100.0 * s.eval.pass_at_k << "% " << std::setprecision(3);
    for (const auto& r : reward_keys) {
      auto it = s.eval.reward_means.find(r);
      os << "| " << (it == s.eval.reward_means.end() ? 0.0 : it->second) << " ";
    }
    os << "| " << std::setprecision(1) << s.eval.mean_completion_length << std::setprecision(3) << " |\n";
  }
  return os.str();
}

// The stage's settings from the config and its stages[i] entry.
// Rank 0: refuse to mix a new run into an old one unless resuming or overwriting.
static void claim_output_dir(const sfs::path& out, bool overwrite, const std::string& resume) {
  if (overwrite && sfs::exists(out)) sfs::remove_all(out);
  bool has_run = sfs::exists(out / "checkpoints") || sfs::exists(out / "stage-1-sft") || sfs::exists(out / "stage-1-grpo") ||
                 sfs::exists(out / "stage.json");
  GRPO_REQUIRE(!has_run || !resume.empty(), "trainer.output_dir '", out.string(),
               "' already holds a run: pass --resume auto to continue it, --overwrite to replace it, or choose "
               "another trainer.output_dir");
  sfs::create_directories(out);
}

static StageSettings stage_settings(const config::Config& cfg, const config::StageConfig& st, size_t i, int64_t max_steps,
                                    int64_t finished_steps, const std::string& dir, const std::string& resume) {
  StageSettings ss;
  ss.kind = st.kind;
  ss.max_steps = max_steps;
  ss.finished_steps = finished_steps;
  ss.learning_rate = st.learning_rate.value_or(cfg.optimizer.learning_rate);
  ss.per_device_train_batch_size = st.per_device_train_batch_size > 0 ? st.per_device_train_batch_size
                                                                      : cfg.trainer.per_device_train_batch_size;
  ss.response_field = st.response_field;
  ss.dir = dir;
  ss.resume = resume;
  if (st.kind == config::StageKind::GRPO)
    GRPO_REQUIRE(int64_t(ss.per_device_train_batch_size) * cfg.trainer.gradient_accumulation_steps % cfg.grpo.num_generations == 0,
                 "stages.", i, ".per_device_train_batch_size * trainer.gradient_accumulation_steps must be a multiple of "
                 "grpo.num_generations");
  return ss;
}

// Rank 0 writes the task's data files and tokenizer; every rank then points cfg.data at them.
static void prepare_task(config::Config& cfg, const sfs::path& out, dist::Distributed& ddp) {
  config::Config tmp = cfg;
  if (ddp.is_main()) prepare_task_data(tmp, false);
  ddp.barrier();
  cfg.data.train_file = tmp.data.train_file.empty() ? (out / "data" / "train.jsonl").string() : tmp.data.train_file;
  if (cfg.data.eval_file.empty() && cfg.task.num_eval > 0) cfg.data.eval_file = (out / "data" / "eval.jsonl").string();
  if (ddp.is_main()) prepare_tokenizer(cfg);
  ddp.barrier();
}

PipelineResult run_pipeline(const config::Config& cfg_in, const PipelineOptions& opts) {
  config::Config cfg = cfg_in;
  const std::string resume = !opts.resume.empty() ? opts.resume : cfg.checkpoint.resume;
  const sfs::path out(cfg.trainer.output_dir);
  if (cfg.trainer.num_threads > 0) torch::set_num_threads(cfg.trainer.num_threads);
  auto ddp = dist::Distributed::create(cfg.distributed, cfg.model.device);
  const bool is_main = ddp->is_main();
  if (cfg.distributed.rollout_ranks > 0) dist::RankRoles(ddp->world_size(), cfg.distributed.rollout_ranks);  // refuse early

  if (is_main) claim_output_dir(out, opts.overwrite, resume);
  ddp->barrier();
  // One log file per process: rank 0 writes train.log, rank r > 0 train.rank-r.log (appending
  // from several processes would interleave partial lines).
  const std::string log_name = is_main ? "train.log" : "train.rank-" + std::to_string(ddp->rank()) + ".log";
  log::init(log::parse_level(cfg.logging.level), (out / log_name).string(), ddp->world_size() > 1 ? ddp->rank() : -1,
            log::parse_level(cfg.logging.file_level));
  install_stop_handlers();

  if (cfg.task.name != config::TaskName::NONE) prepare_task(cfg, out, *ddp);
  if (is_main) config::write_resolved_config(cfg, out.string());
  ddp->check_same_fingerprint(dist::run_fingerprint(config::dump_config(cfg)));

  // An explicit checkpoint is checked before anything else, so that a corrupt one fails the same
  // way whether or not the stage it belongs to has finished (a finished stage never loads it).
  if (!resume.empty() && resume != "auto") find_resume(resume, out.string());

  auto stages = stages_of(cfg, opts.sft_only);
  PipelineResult result;
  std::string prev_final;  // final weights of the previous stage
  reward::RewardSet rewards;
  bool need_rewards = cfg.data.eval_file.size() > 0;
  for (const auto& s : stages) need_rewards = need_rewards || s.kind == config::StageKind::GRPO;
  if (need_rewards) rewards = reward::RewardSet::from_config(cfg.reward);

  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& st = stages[i];
    std::string name(config::enum_name(st.kind));
    sfs::path dir = stages.size() == 1 ? out : out / ("stage-" + std::to_string(i + 1) + "-" + name);
    StageReport report{name, dir.string()};
    config::Config scfg = cfg;
    if (!prev_final.empty()) scfg.model.path = prev_final;
    const sfs::path final_dir = dir / "final";
    const int64_t max_steps = st.max_steps > 0 ? st.max_steps : cfg.trainer.max_steps;
    int64_t finished_steps = -1;  // >= 0: a finished stage that the config now asks to extend
    if (sfs::exists(dir / "stage.json")) {
      auto j = nlohmann::json::parse(fs::read_file((dir / "stage.json").string()));
      report.steps = j.value("steps", int64_t{0});
      const std::string key = max_steps_key(st, i);
      if (max_steps > report.steps) {
        require_no_later_stage(out, stages, i, report.steps, max_steps);
        finished_steps = report.steps;
        log::info(str("stage ", i + 1, " (", name, ") finished at ", report.steps, " steps; ", key, " is now ", max_steps,
                      ": continuing it for ", max_steps - report.steps, " more steps"));
      } else {
        report.evaluated = j.contains("eval");
        if (report.evaluated) report.eval = eval_from_json(j["eval"]);
        log::info(str("stage ", i + 1, " (", name, ") already finished at ", report.steps, " steps (", key, " = ",
                      max_steps, "): ", dir.string(), "; to train it further, raise ", key,
                      " and run again with --resume auto"));
        result.stages.push_back(report);
        prev_final = final_dir.string();
        continue;
      }
    }
    const StageSettings ss = stage_settings(cfg, st, i, max_steps, finished_steps, dir.string(), resume);

    log::info(str("stage ", i + 1, "/", stages.size(), ": ", name, ", ", ss.max_steps, " steps, lr ", ss.learning_rate,
                  ", into ", dir.string()));
    Policy policy = load_policy(scfg);
    const std::string kernels_line = model::apply_kernels(*policy.model, scfg.kernels);  // rollout and trainer share it
    const config::LoraConfig lora = apply_config_lora(policy.model, scfg);  // adapters after kernels, as in generate
    if (is_main) {  // the run directory says which kernels trained it, not only the log
      sfs::create_directories(dir);
      fs::atomic_write((dir / "kernels.txt").string(), kernels_line + "\n");
    }
    if (i == 0) log::info(str("policy: ", policy.model->spec().architecture, ", ", policy.model->spec().parameter_count(),
                              " parameters (", policy.model->spec().active_parameter_count(), " active per token); tokenizer: ",
                              policy.tokenizer->describe()));
    std::unique_ptr<data::Dataset> eval_data;
    if (!cfg.data.eval_file.empty()) eval_data = load_prompt_dataset(cfg.data.eval_file, cfg, policy);

    // distributed.rollout_ranks (GRPO stages; SFT stays data parallel on every rank): the last rank
    // only generates and scores for the trainer, rank 0, which trains alone (no data-parallel group).
    const bool rollout_split = st.kind == config::StageKind::GRPO && cfg.distributed.rollout_ranks > 0;
    if (rollout_split) {
      const dist::RankRoles roles(ddp->world_size(), cfg.distributed.rollout_ranks);
      GRPO_REQUIRE(roles.num_trainers() == 1 && roles.rollout_ranks == 1, "distributed.rollout_ranks: ",
                         roles.rollout_ranks, " with ", ddp->world_size(), " processes: only 1 rollout rank and 1 trainer "
                         "(2 processes) are supported so far");
      if (roles.is_rollout(ddp->rank())) {
        GrpoStage server(scfg, ss, policy, nullptr, rewards, nullptr);
        const bool interrupted = server.serve_rollouts(ddp, 0);
        ddp->barrier();
        if (interrupted) {
          result.interrupted = true;
          result.stages.push_back(report);
          return result;
        }
        result.stages.push_back(report);
        prev_final = final_dir.string();
        continue;
      }
    }
    std::unique_ptr<StageRunner> runner;
    if (st.kind == config::StageKind::SFT) runner = std::make_unique<SftStage>(scfg, ss, policy, ddp);
    else if (!rollout_split) runner = std::make_unique<GrpoStage>(scfg, ss, policy, ddp, rewards, eval_data.get());
    else {
      auto grpo = std::make_unique<GrpoStage>(scfg, ss, policy, nullptr, rewards, eval_data.get());
      grpo->set_rollout_rank(ddp, ddp->world_size() - 1);
      runner = std::move(grpo);
    }
    StageOutcome outcome;
    try {
      outcome = runner->run();
    } catch (...) {
      if (rollout_split) static_cast<GrpoStage&>(*runner).stop_rollout_rank(true);
      throw;
    }
    report.steps = runner->step();
    if (rollout_split) {
      auto& grpo = static_cast<GrpoStage&>(*runner);
      grpo.stop_rollout_rank(outcome == StageOutcome::INTERRUPTED);
      log::info(str("rollout ranks: ", grpo.local_rollouts(), " generate calls on the trainer rank"));
      if (outcome == StageOutcome::INTERRUPTED) ddp->barrier();  // the rollout rank waits there
    }
    if (outcome == StageOutcome::INTERRUPTED) {
      result.interrupted = true;
      result.stages.push_back(report);
      return result;
    }
    if (eval_data) {
      log::info(str("evaluating stage ", i + 1, " (", name, ") on ", cfg.data.eval_file));
      report.eval = evaluate(policy, *eval_data, cfg, rewards, static_cast<uint64_t>(cfg.trainer.seed) + 7919);
      report.evaluated = true;
    }
    if (is_main) {
      save_policy_dir(policy, scfg, final_dir.string());
      save_lora_adapter_files(policy.model, lora, scfg, final_dir.string());  // PEFT files beside it (LoRA only)
      nlohmann::json j = {{"stage", name}, {"steps", report.steps}};
      if (report.evaluated) j["eval"] = eval_to_json(report.eval);
      fs::atomic_write((dir / "stage.json").string(), j.dump(2) + "\n");
    }
    ddp->barrier();
    result.stages.push_back(report);
    prev_final = final_dir.string();
  }
  result.table = format_stage_table(result.stages);
  return result;
}

}  // namespace grpo::train
