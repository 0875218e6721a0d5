#pragma once
// Each CLI subcommand family registers itself on the app; main() parses and runs. Commands throw
// grpo::InputError (exit 2) or other exceptions (exit 1); only main() prints and exits.
#include <CLI/CLI.hpp>
#include <string>

namespace grpo::cli {

/// True for a grpo weights directory (a stage's final/ or a checkpoint: model.safetensors and
/// config.yaml, no config.json), which train::load_policy reads; `model info|convert` and
/// `generate` accept it beside Hugging Face directories and .gguf files.
bool is_grpo_weights_dir(const std::string& path);

/// `grpo config check|show|docs`.
void register_config_commands(CLI::App& app);

/// `grpo model info|convert`: inspect and convert policy models.
void register_model_commands(CLI::App& app);

/// `grpo tokenizer encode|decode|info|train`.
void register_tokenizer_commands(CLI::App& app);

/// `grpo generate CONFIG --prompts FILE.jsonl --out FILE.jsonl`: samples completions (rollout engine).
void register_generate_commands(CLI::App& app);

/// `grpo sandbox run FILE`: one program through the code sandbox, result as JSON.
void register_sandbox_commands(CLI::App& app);

/// `grpo reward CONFIG --input FILE.jsonl --out FILE.jsonl`: scores completions offline.
void register_reward_commands(CLI::App& app);

/// `grpo eval CONFIG|MODEL --task NAME`: accuracy, pass@k, maj@k of a model on a task split.
void register_eval_commands(CLI::App& app);

/// `grpo launch --nproc N -- <subcommand> ...`: N local data-parallel worker processes.
void register_launch_commands(CLI::App& app);

/// `grpo plan CONFIG`: per-GPU memory of a GRPO step by part, for each sharding mode.
void register_plan_commands(CLI::App& app);

/// `grpo train`, `grpo sft`, `grpo data`: the training pipeline.
void register_train_commands(CLI::App& app);

}  // namespace grpo::cli
