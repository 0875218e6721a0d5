#pragma once
// A whole training run: task data and tokenizer preparation, the stages of cfg.stages in order
// (each from the previous stage's final weights), evaluation after each stage, and the
// before/after table. Layout of trainer.output_dir:
//   config.yaml, train.log (rank r > 0 of a data-parallel run: train.rank-r.log)
//   data/train.jsonl, data/eval.jsonl        (task.name != none and no data files given)
//   stage-1-sft/ stage-2-grpo/ ...           (one stage: directly in output_dir)
//     checkpoints/  metrics.jsonl  samples.jsonl  tensorboard/
//     kernels.txt  (the kernels line: which implementation each op family runs)
//     final/  (model.safetensors + config.yaml: a model.path for later stages and grpo generate)
//     stage.json  (written last: steps and evaluation of the finished stage)
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/train/evaluate.h"

namespace grpo::train {

struct PipelineOptions {
  std::string resume;       // "", "auto" or a checkpoint path (overrides checkpoint.resume)
  bool overwrite = false;   // delete trainer.output_dir first
  bool sft_only = false;    // `grpo sft`: a single sft stage when cfg.stages is empty
};

struct StageReport {
  std::string name;  // "sft", "grpo", ...
  std::string dir;
  int64_t steps = 0;
  bool evaluated = false;
  EvalResult eval;
};

struct PipelineResult {
  bool interrupted = false;  // a stop signal ended the run after saving
  std::vector<StageReport> stages;
  std::string table;         // the before/after table as printed
};

/// Runs the pipeline. Throws grpo::InputError for bad input (config, data, a fresh run over a
/// non-empty output_dir without overwrite or resume, a corrupt checkpoint named by --resume).
PipelineResult run_pipeline(const config::Config& cfg, const PipelineOptions& opts);

/// `grpo data`: writes the task's splits to data.train_file / data.eval_file (defaults under
/// output_dir/data/). Returns the two paths.
std::pair<std::string, std::string> prepare_task_data(config::Config& cfg, bool force);

/// The table of stage results (accuracy, pass@k, per-function rewards, completion length); when no
/// stage was evaluated (no held-out set), one line saying so and how to add one.
std::string format_stage_table(const std::vector<StageReport>& stages);

}  // namespace grpo::train
