// `grpo train`, `grpo sft`, `grpo data`: the training pipeline from the command line.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "grpo/cli/commands.h"
#include "plot.h"
#include "grpo/config/config.h"
#include "grpo/train/pipeline.h"
#include "grpo/util/log.h"

namespace grpo::cli {
namespace {

struct TrainArgs {
  std::string file;
  std::vector<std::string> overrides;
  std::string resume;
  bool overwrite = false;
  bool force = false;
};

void add_config_args(CLI::App* sub, TrainArgs& a) {
  sub->add_option("config", a.file, "YAML config file")->required();
  sub->add_option("overrides", a.overrides, "key.path=value overrides, applied after the file");
}

void run_training(const TrainArgs& a, bool sft_only) {
  auto cfg = config::load_config(a.file, a.overrides).config;
  train::PipelineOptions opts;
  opts.resume = a.resume;
  opts.overwrite = a.overwrite;
  opts.sft_only = sft_only;
  auto res = train::run_pipeline(cfg, opts);
  if (res.interrupted) {
    // The same config and overrides (trainer.output_dir may be one of them), then --resume auto.
    std::string again = a.file;
    for (const auto& o : a.overrides)
      again += o.find_first_of(" \t'\"$`\\") == std::string::npos ? " " + o : " '" + o + "'";
    std::cout << "stopped by a signal after saving a checkpoint; continue with: grpo " << (sft_only ? "sft " : "train ")
              << again << " --resume auto\n";
    return;
  }
  const char* rank = std::getenv("RANK");
  if (rank && std::string(rank) != "0") return;
  // Plot the GRPO stages' curves (rank 0 only).
  for (size_t i = 0; i < res.stages.size(); ++i) {
    const auto& s = res.stages[i];
    if (s.name != "grpo") continue;
    auto metrics = std::filesystem::path(s.dir) / "metrics.jsonl";
    auto png = std::filesystem::path(s.dir) / "training.png";
    // Held-out accuracy where the stage started (the previous stage's evaluation) and ended.
    std::vector<std::pair<double, double>> heldout;
    if (i > 0 && res.stages[i - 1].evaluated && res.stages[i - 1].eval.has_accuracy)
      heldout.emplace_back(0.0, res.stages[i - 1].eval.accuracy);
    if (s.evaluated && s.eval.has_accuracy) heldout.emplace_back(static_cast<double>(s.steps), s.eval.accuracy);
    if (std::filesystem::exists(metrics)) {
      std::string why = write_training_plot(metrics.string(), png.string(), heldout);
      if (why.empty()) std::cout << "plot: " << png.string() << "\n";
      else log::warn("no plot: " + why);
    }
  }
  if (!res.table.empty()) std::cout << "\n" << res.table;
  // The gain of the last GRPO stage over the stage before it (the R1 recipe's before/after).
  for (size_t i = 1; i < res.stages.size(); ++i) {
    const auto& a0 = res.stages[i - 1];
    const auto& a1 = res.stages[i];
    if (a1.name == "grpo" && a0.evaluated && a1.evaluated && a1.eval.has_accuracy)
      std::cout << "held-out accuracy: " << 100.0 * a0.eval.accuracy << "% after " << a0.name << " -> "
                << 100.0 * a1.eval.accuracy << "% after grpo (" << (a1.eval.accuracy >= a0.eval.accuracy ? "+" : "")
                << 100.0 * (a1.eval.accuracy - a0.eval.accuracy) << " points)\n";
  }
}

// `grpo train --help`'s metric list: what to watch, and why `loss` is not it (docs/training.md,
// "Why the logged loss is 0").
const char* const kTrainMetricsHelp =
    "Metrics (metrics.jsonl, TensorBoard; progress line: loss, reward, accuracy):\n"
    "  reward, reward_std, rewards/<fn>/mean   the rewards of the step's completions: what training raises\n"
    "  accuracy                                fraction of completions the correctness reward scores right\n"
    "  grad_norm                               gradient norm before clipping: the size of the update\n"
    "  kl                                      KL to the reference model (grpo.beta > 0)\n"
    "  clip_ratio/low|high|region              fraction of tokens clipped (> 0 only when grpo.num_iterations > 1)\n"
    "  entropy, completions/length/*, completions/truncated_ratio, frac_reward_zero_std, learning_rate\n"
    "  loss                                    0 or near it at on-policy steps while the gradient is not:\n"
    "                                          there the policy ratio is exactly 1, so the loss is minus the\n"
    "                                          mean advantage (advantages are centred per group: exactly 0 for\n"
    "                                          grpo.loss_type grpo) plus beta * KL, while its gradient is the\n"
    "                                          policy gradient. Watch reward and grad_norm instead.\n";

}  // namespace

void register_train_commands(CLI::App& app) {
  static TrainArgs train_args, sft_args, data_args;
  auto* train = app.add_subcommand("train", "Run a training pipeline (cfg.stages, or one GRPO stage)");
  add_config_args(train, train_args);
  train->add_option("--resume", train_args.resume, "auto (newest valid checkpoint) or a checkpoint directory");
  train->add_flag("--overwrite", train_args.overwrite, "Delete trainer.output_dir first");
  train->footer(kTrainMetricsHelp);
  train->callback([] { run_training(train_args, false); });

  auto* sft = app.add_subcommand("sft", "Supervised fine-tuning (one sft stage unless cfg.stages says otherwise)");
  add_config_args(sft, sft_args);
  sft->add_option("--resume", sft_args.resume, "auto (newest valid checkpoint) or a checkpoint directory");
  sft->add_flag("--overwrite", sft_args.overwrite, "Delete trainer.output_dir first");
  sft->callback([] { run_training(sft_args, true); });

  auto* data = app.add_subcommand("data", "Generate the task's train and held-out JSONL files (task: section)");
  add_config_args(data, data_args);
  data->add_flag("--force", data_args.force, "Regenerate even when the files exist");
  data->callback([] {
    auto cfg = config::load_config(data_args.file, data_args.overrides).config;
    auto [train_file, eval_file] = train::prepare_task_data(cfg, data_args.force);
    std::cout << "train: " << train_file << "\neval:  " << eval_file << "\n";
  });
}

}  // namespace grpo::cli
