// `grpo eval CONFIG|MODEL [overrides...] --task NAME|FILE [--split heldout|train] [-n N] [--k 1,4,8]
// [--temperature T] [--seed S] [--limit M] [--out eval.jsonl]`: greedy accuracy, pass@k, maj@k,
// format and truncation rates and mean length of a model on a task's split, with the prompts,
// template and rewards that training uses (train/evaluate.h), resumable (train/eval_run.h).
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/data/tasks.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/train/eval_run.h"
#include "grpo/train/stage_runner.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"
#include "grpo/util/strings.h"

namespace grpo::cli {
namespace {

namespace sfs = std::filesystem;

struct EvalArgs {
  std::string target;  // a YAML config, or a model: HF directory, .gguf, final/ or checkpoint directory
  std::vector<std::string> overrides;
  std::string task;
  std::string split = "heldout";
  int num_samples = 0;  // 0: trainer.eval_num_samples
  std::string ks;       // "": 1, 2, 4, ... up to n, and n
  double temperature = NAN;
  int64_t seed = -1;  // < 0: trainer.seed + 7919, the in-training evaluation's seed
  int64_t limit = 0;
  std::string out = "eval.jsonl";
  bool no_progress = false;
};

bool is_config_file(const std::string& p) {
  auto ext = sfs::path(p).extension().string();
  return ext == ".yaml" || ext == ".yml";
}

// Rewards for a task when the config names none: R1's strict format (0.2) and the task's
// correctness reward (1.0), as configs/quickstart.yaml weighs them.
std::vector<config::RewardFunctionConfig> default_rewards(const config::TaskConfig& task) {
  config::RewardFunctionConfig format, check;
  format.name = config::RewardKind::FORMAT;
  format.weight = 0.2;
  check.weight = 1.0;
  switch (task.name) {
    case config::TaskName::COUNTDOWN: check.name = config::RewardKind::COUNTDOWN; break;
    case config::TaskName::HUMANEVAL: check.name = config::RewardKind::CODE; return {check};
    case config::TaskName::ARITHMETIC:
      check.name = task.arithmetic.answer_format == config::ArithmeticAnswer::PYTHON ? config::RewardKind::CODE
                                                                                     : config::RewardKind::MATH_ANSWER;
      break;
    default: check.name = config::RewardKind::MATH_ANSWER; break;
  }
  return {format, check};
}

// The config: the YAML file; a grpo weights directory's own config.yaml (the run's template,
// system prompt, rewards and task); or, for a Hugging Face directory or .gguf, the defaults.
// --task NAME replaces the task (and the data files that belonged to the old one).
config::Config resolve_config(const EvalArgs& a, std::string& task_file) {
  config::Config cfg;
  if (is_config_file(a.target)) {
    cfg = config::load_config(a.target, a.overrides).config;
  } else {
    GRPO_REQUIRE(sfs::exists(a.target), a.target, ": no such file or directory (expected a YAML config, a Hugging Face "
                 "directory, a .gguf file, or a run's final/ or checkpoint directory)");
    if (is_grpo_weights_dir(a.target)) {
      cfg = config::load_config((sfs::path(a.target) / "config.yaml").string(), a.overrides).config;
    } else {
      cfg = config::load_config_string("model:\n  path: " + nlohmann::json(a.target).dump() + "\n", "<grpo eval>", a.overrides)
                .config;
    }
    cfg.model.path = a.target;
  }
  if (!a.task.empty()) {
    const bool is_file = a.task.find('/') != std::string::npos || sfs::path(a.task).extension() == ".jsonl" ||
                         sfs::path(a.task).extension() == ".json";
    if (is_file) {
      GRPO_REQUIRE(sfs::exists(a.task), "--task ", a.task, ": no such file");
      task_file = a.task;
    } else {
      auto name = config::enum_from_name<config::TaskName>(a.task);
      GRPO_REQUIRE(name && *name != config::TaskName::NONE, "--task ", a.task, ": expected a JSONL file or one of ",
                   join(config::enum_names<config::TaskName>(), ", "));
      if (*name != cfg.task.name) {
        cfg.task.name = *name;
        cfg.data.train_file.clear();
        cfg.data.eval_file.clear();
      }
    }
  }
  if (cfg.reward.functions.empty()) cfg.reward.functions = default_rewards(cfg.task);
  return cfg;
}

// The file of the split to evaluate: --task FILE; else data.eval_file / data.train_file when it
// exists; else the built-in task's split, generated from task.seed (what `grpo data` and `grpo
// train` write) into `tmp`.
std::string resolve_data(const config::Config& cfg, const EvalArgs& a, const std::string& task_file, const sfs::path& tmp) {
  if (!task_file.empty()) return task_file;
  const bool heldout = a.split == "heldout";
  const std::string& configured = heldout ? cfg.data.eval_file : cfg.data.train_file;
  if (!configured.empty() && sfs::exists(configured)) return configured;
  GRPO_REQUIRE(cfg.task.name != config::TaskName::NONE, "no ", heldout ? "held-out" : "training",
               " data: give --task NAME (", join(config::enum_names<config::TaskName>(), ", "), ") or --task FILE.jsonl, ",
               "or set ", heldout ? "data.eval_file" : "data.train_file");
  GRPO_REQUIRE(!heldout || cfg.task.num_eval > 0, "task.num_eval is 0: the task has no held-out split");
  sfs::create_directories(tmp);
  data::write_task_splits(cfg.task, (tmp / "train.jsonl").string(), (tmp / "eval.jsonl").string());
  return (tmp / (heldout ? "eval.jsonl" : "train.jsonl")).string();
}

std::vector<int> parse_ks(const std::string& text, int n) {
  std::vector<int> ks;
  if (text.empty()) {
    for (int k = 1; k < n; k *= 2) ks.push_back(k);
    ks.push_back(n);
    return ks;
  }
  for (const auto& part : split(text, ',')) {
    auto t = std::string(trim(part));
    try {
      size_t used = 0;
      int k = std::stoi(t, &used);
      GRPO_REQUIRE(used == t.size(), "");
      ks.push_back(k);
    } catch (const std::exception&) {
      throw InputError(str("--k ", text, ": expected comma-separated integers, e.g. 1,4,8"));
    }
  }
  return ks;
}

// The model's bytes as far as cheaply known: size and modification time of its weights file, so a
// resumed evaluation refuses lines written for other weights at the same path.
std::string weights_stamp(const std::string& model_path) {
  if (model_path.empty()) return "new model";
  sfs::path p = model_path;
  if (sfs::is_directory(p)) p /= "model.safetensors";
  if (!sfs::exists(p)) return model_path;
  auto t = sfs::last_write_time(p).time_since_epoch().count();
  return str(p.string(), " ", sfs::file_size(p), " bytes, mtime ", t);
}

std::string summary_path(const std::string& out) {
  sfs::path p = out;
  if (p.extension() == ".jsonl") p.replace_extension();
  return p.string() + ".summary.json";
}

std::string pct(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << 100.0 * v << "%";
  return os.str();
}

nlohmann::json summary_json(const train::EvalResult& r, const std::string& data_file, const EvalArgs& a,
                            const train::EvalSampling& s, const config::Config& cfg) {
  nlohmann::json j = {{"model", cfg.model.path},
                      {"data", data_file},
                      {"split", a.split},
                      {"num_problems", r.num_prompts},
                      {"num_samples", s.num_samples},
                      {"temperature", s.temperature},
                      {"seed", s.seed},
                      {"mean_length", r.mean_completion_length},
                      {"truncation_rate", r.truncation_rate},
                      {"reward_means", r.reward_means},
                      {"out", a.out}};
  if (r.has_accuracy) j["greedy_accuracy"] = r.accuracy;
  if (r.has_format) j["format_rate"] = r.format_rate;
  if (r.has_accuracy)
    for (const auto& [k, v] : r.pass_at) j["pass@" + std::to_string(k)] = v;
  for (const auto& [k, v] : r.maj_at) j["maj@" + std::to_string(k)] = v;
  if (s.num_samples > 1) j["sample_mean_length"] = r.sample_mean_completion_length;
  return j;
}

void print_summary(const nlohmann::json& j) {
  std::cout << "| metric | value |\n|---|---|\n";
  std::cout << "| problems | " << j["num_problems"].get<int64_t>() << " (" << j["split"].get<std::string>() << ", "
            << j["data"].get<std::string>() << ") |\n";
  for (const char* key : {"greedy_accuracy", "format_rate", "truncation_rate"})
    if (j.contains(key)) std::cout << "| " << key << " | " << pct(j[key].get<double>()) << " |\n";
  for (const auto& [k, v] : j.items())
    if (k.rfind("pass@", 0) == 0 || k.rfind("maj@", 0) == 0) std::cout << "| " << k << " | " << pct(v.get<double>()) << " |\n";
  std::cout << std::fixed << std::setprecision(1) << "| mean_length | " << j["mean_length"].get<double>() << " tokens |\n";
  if (j.contains("sample_mean_length"))
    std::cout << "| sample_mean_length | " << j["sample_mean_length"].get<double>() << " tokens |\n";
  std::cout << std::setprecision(3);
  for (const auto& [k, v] : j["reward_means"].items()) std::cout << "| reward " << k << " | " << v.get<double>() << " |\n";
  std::cout.unsetf(std::ios::floatfield);
}

void run_eval_command(const EvalArgs& a) {
  GRPO_REQUIRE(a.split == "heldout" || a.split == "train", "--split ", a.split, ": expected heldout or train");
  std::string task_file;
  config::Config cfg = resolve_config(a, task_file);
  if (cfg.trainer.num_threads > 0) torch::set_num_threads(cfg.trainer.num_threads);  // as grpo train does

  const sfs::path tmp = sfs::temp_directory_path() / ("grpo_eval_" + std::to_string(::getpid()));
  std::string data_file;
  train::Policy policy = train::load_policy(cfg);
  model::apply_kernels(*policy.model, cfg.kernels);  // the same kernels as the trainer's rollout
  std::unique_ptr<data::Dataset> data;
  try {
    data_file = resolve_data(cfg, a, task_file, tmp);
    data = train::load_prompt_dataset(data_file, cfg, policy);
  } catch (...) {
    sfs::remove_all(tmp);
    throw;
  }
  const std::string data_bytes = fs::read_file(data_file);
  sfs::remove_all(tmp);
  if (data_file.rfind(tmp.string(), 0) == 0)
    data_file = str("task ", config::enum_name(cfg.task.name), " ", a.split, " split (seed ", cfg.task.seed, ")");
  auto rewards = reward::RewardSet::from_config(cfg.reward);

  train::EvalRunOptions o;
  o.out = a.out;
  o.sampling.num_samples = a.num_samples > 0 ? a.num_samples : cfg.trainer.eval_num_samples;
  o.sampling.temperature = std::isnan(a.temperature) ? cfg.rollout.temperature : a.temperature;
  o.sampling.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : static_cast<uint64_t>(cfg.trainer.seed) + 7919;
  o.ks = parse_ks(a.ks, o.sampling.num_samples);
  o.limit = a.limit;
  o.progress = !a.no_progress;
  if (o.sampling.num_samples > 1 && o.sampling.temperature == 0)
    log::warn("eval: -n > 1 at temperature 0: every sample is the greedy completion; set --temperature");
  o.settings = train::eval_settings_key(str(config::dump_config(cfg), "\n", weights_stamp(cfg.model.path), "\n", data_bytes,
                                            "\nn=", o.sampling.num_samples, " T=", o.sampling.temperature,
                                            " seed=", o.sampling.seed, " split=", a.split));
  log::info(str("eval: ", cfg.model.path.empty() ? std::string("a new model") : cfg.model.path, " on ", data_file, " (",
                data->size(), " problems", a.limit > 0 ? str(", the first ", a.limit) : std::string(), "), greedy + ",
                o.sampling.num_samples > 1 ? str(o.sampling.num_samples, " samples at T = ", o.sampling.temperature)
                                           : std::string("no samples"),
                ", into ", a.out));
  auto res = train::run_eval(policy, *data, cfg, rewards, o);
  auto j = summary_json(res.summary, data_file, a, o.sampling, cfg);
  j["resumed"] = res.resumed;
  fs::atomic_write(summary_path(a.out), j.dump(2) + "\n");
  print_summary(j);
  log::info(str("eval: ", res.evaluated, " problems evaluated, ", res.resumed, " resumed from ", a.out, "; summary in ",
                summary_path(a.out)));
}

}  // namespace

void register_eval_commands(CLI::App& app) {
  static EvalArgs args;
  auto* e = app.add_subcommand("eval", "Evaluate a model on a task split: greedy accuracy, pass@k, maj@k, format rate, "
                                       "length, truncation; per-problem JSONL, resumable");
  e->add_option("target", args.target,
                "YAML config, or a model: Hugging Face directory, .gguf file, or a run's final/ or checkpoint directory")
      ->required();
  e->add_option("overrides", args.overrides, "key.path=value overrides, applied after the config");
  e->add_option("--task", args.task, "arithmetic, countdown, gsm8k, humaneval (generated as grpo data does), or a JSONL "
                                     "file; default: the config's task or data files");
  e->add_option("--split", args.split, "heldout (data.eval_file, the task's held-out split) or train");
  e->add_option("-n,--num-samples", args.num_samples, "samples per problem for pass@k and maj@k (default "
                                                      "trainer.eval_num_samples; 1 = greedy only)");
  e->add_option("--k", args.ks, "comma-separated k of pass@k and maj@k, each <= n (default 1, 2, 4, ... and n)");
  e->add_option("--temperature", args.temperature, "sampling temperature of the n samples (default rollout.temperature)");
  e->add_option("--seed", args.seed, "sampling seed (default trainer.seed + 7919, the training evaluation's)");
  e->add_option("--limit", args.limit, "evaluate only the first N problems of the split");
  e->add_option("--out", args.out, "per-problem JSONL; resumed when it exists; the summary goes to <out>.summary.json");
  e->add_flag("--no-progress", args.no_progress, "no progress line");
  e->callback([] { run_eval_command(args); });
}

}  // namespace grpo::cli
