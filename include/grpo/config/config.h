#pragma once
// The whole run configuration: one typed struct per YAML section. Load with load_config(), which
// applies included base files, then the file, then command-line overrides, and validates.
#include <string>
#include <vector>

#include "grpo/config/grpo_config.h"
#include "grpo/config/lora_config.h"
#include "grpo/config/model_config.h"
#include "grpo/config/precision_config.h"
#include "grpo/config/reward_config.h"
#include "grpo/config/rollout_config.h"
#include "grpo/config/stage_config.h"
#include "grpo/config/task_config.h"
#include "grpo/config/train_config.h"

namespace grpo::config {

struct Config {
  ModelConfig model;
  KernelsConfig kernels;
  LoraConfig lora;
  TokenizerConfig tokenizer;
  DataConfig data;
  RolloutConfig rollout;
  RewardConfig reward;
  GrpoConfig grpo;
  OptimizerConfig optimizer;
  TrainerConfig trainer;
  CheckpointConfig checkpoint;
  LoggingConfig logging;
  DistributedConfig distributed;
  TaskConfig task;
  std::vector<StageConfig> stages;  // empty: one grpo stage (grpo train) or one sft stage (grpo sft)

  template <class V> void visit(V& v) {
    v("model", model, "The policy model.");
    v("kernels", kernels, "Custom operators and FP8 (docs/kernels.md).");
    v("lora", lora, "LoRA adapters instead of full fine-tuning (PEFT LoraConfig names; docs/training.md).");
    v("tokenizer", tokenizer, "Tokenizer and chat template.");
    v("data", data, "Datasets and prompt formatting.");
    v("rollout", rollout, "Sampling of completions.");
    v("reward", reward, "Reward functions and the code sandbox.");
    v("grpo", grpo, "The GRPO algorithm.");
    v("optimizer", optimizer, "AdamW and the learning-rate schedule.");
    v("trainer", trainer, "The training loop.");
    v("checkpoint", checkpoint, "Checkpointing and resume.");
    v("logging", logging, "Logs and metrics.");
    v("distributed", distributed, "Multi-process data parallel.");
    v("task", task, "Built-in task data generation (grpo data).");
    v("stages", stages, "Training pipeline, run in order, each stage starting from the previous one's weights; empty = a single stage.");
  }
};

/// A loaded config and where each key was set.
struct LoadedConfig {
  Config config;
  Provenance provenance;          // key path -> file:line:col of the value that won
  std::vector<std::string> files;  // files read, bases first
};

/// Loads `path` (after its `include:`/`defaults:` bases, recursively, relative to the including
/// file; later files win, mappings merge, lists replace), applies `overrides` ("key.path=value",
/// value parsed as YAML; list elements by index, "reward.functions.0.weight=2"), then validates
/// cross-field rules. Throws ConfigError naming file:line:col, key path and kind on any problem.
LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// Same from YAML text (for tests); `name` stands for the file name in messages and relative
/// includes resolve against the current directory.
LoadedConfig load_config_string(const std::string& yaml, const std::string& name = "<string>",
                                const std::vector<std::string>& overrides = {});

/// Cross-field rules (e.g. per_device_train_batch_size must divide into whole groups). Throws
/// ConfigError of kind BAD_VALUE at the location recorded in `prov` for the offending key.
void validate(const Config& cfg, const Provenance& prov);

/// The fully resolved config as YAML, every key present; reads back to an equal Config.
std::string dump_config(const Config& cfg);

/// Writes dump_config() to <dir>/config.yaml atomically (temp file, fsync, rename). Creates dir.
/// Throws grpo::InputError when the directory cannot be created or written.
void write_resolved_config(const Config& cfg, const std::string& dir);

/// Every key of the config with type, default, allowed range and meaning (docs/config.md).
std::vector<DocRow> document_config();

}  // namespace grpo::config
