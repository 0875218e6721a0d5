#pragma once
// data:, optimizer:, trainer:, checkpoint:, logging:, distributed: sections. Names follow TRL's
// GRPOConfig / transformers' TrainingArguments where one exists.
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class OnBadRecord { ERROR, SKIP };
template <> struct EnumNames<OnBadRecord> {
  static constexpr std::pair<OnBadRecord, std::string_view> items[] = {{OnBadRecord::ERROR, "error"},
                                                                       {OnBadRecord::SKIP, "skip"}};
};

struct DataConfig {
  std::string train_file;
  std::string eval_file;
  std::string prompt_field = "prompt";    // text, or a list of {role, content} messages
  std::string answer_field = "answer";    // reference answer (math) / response (SFT)
  std::string system_prompt;
  std::string prompt_template = "{prompt}";
  int max_prompt_length = 512;            // tokens; longer prompts are dropped and counted
  bool shuffle = true;
  OnBadRecord on_bad_record = OnBadRecord::ERROR;
  template <class V> void visit(V& v) {
    v("train_file", train_file, "Training data: JSONL (one object per line) or a JSON array.");
    v("eval_file", eval_file, "Held-out data for evaluation; empty = no evaluation.");
    v("prompt_field", prompt_field, "Field with the prompt: a string, or a list of {role, content} messages.");
    v("answer_field", answer_field, "Field with the reference answer (rewards) or the response (SFT).");
    v("system_prompt", system_prompt, "System message put before every prompt; empty = none.");
    v("prompt_template", prompt_template, "Template of the user turn; {prompt} is replaced by the prompt field, {field} by any other field.");
    v("max_prompt_length", max_prompt_length, "Prompts longer than this many tokens are dropped and counted.", at_least(1));
    v("shuffle", shuffle, "Shuffle every epoch, deterministically from trainer.seed.");
    v("on_bad_record", on_bad_record, "error: stop at a malformed record with file:line; skip: skip and count it.");
  }
};

enum class LrScheduler { CONSTANT, LINEAR, COSINE };
template <> struct EnumNames<LrScheduler> {
  static constexpr std::pair<LrScheduler, std::string_view> items[] = {
      {LrScheduler::CONSTANT, "constant"}, {LrScheduler::LINEAR, "linear"}, {LrScheduler::COSINE, "cosine"}};
};

struct OptimizerConfig {
  double learning_rate = 1e-6;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // 0 = no clipping
  LrScheduler lr_scheduler_type = LrScheduler::CONSTANT;
  int warmup_steps = 0;
  double warmup_ratio = 0.0;
  template <class V> void visit(V& v) {
    v("learning_rate", learning_rate, "Peak AdamW learning rate.", greater_than(0));
    v("adam_beta1", adam_beta1, "AdamW beta1.", between(0, 1));
    v("adam_beta2", adam_beta2, "AdamW beta2.", between(0, 1));
    v("adam_epsilon", adam_epsilon, "AdamW epsilon.", greater_than(0));
    v("weight_decay", weight_decay, "Decoupled weight decay.", at_least(0));
    v("max_grad_norm", max_grad_norm, "Clip the global gradient norm to this; 0 = no clipping.", at_least(0));
    v("lr_scheduler_type", lr_scheduler_type, "Learning-rate schedule after warmup.");
    v("warmup_steps", warmup_steps, "Linear warmup steps (wins over warmup_ratio when > 0).", at_least(0));
    v("warmup_ratio", warmup_ratio, "Warmup as a fraction of max_steps.", between(0, 1));
  }
};

struct TrainerConfig {
  std::string output_dir = "runs/default";
  int num_threads = 0;  // 0: LibTorch default (one per core)
  int64_t seed = 42;
  int max_steps = 100;
  int per_device_train_batch_size = 8;   // completions per micro-batch (TRL's meaning)
  int gradient_accumulation_steps = 1;
  bool bf16 = false;                     // bf16 autocast (CUDA and CPU), fp32 master weights
  bool gradient_checkpointing = false;
  int eval_steps = 0;                    // 0 = evaluate only at the end
  int eval_num_samples = 1;              // k of pass@k
  int max_consecutive_nonfinite = 3;
  template <class V> void visit(V& v) {
    v("output_dir", output_dir, "Run directory: resolved config, logs, metrics, checkpoints, samples.");
    v("num_threads", num_threads, "CPU threads of LibTorch's intra-op pool (0: one per core). 1 suits tiny models and machines shared with other jobs, where spinning worker threads cost more than they give.", at_least(0));
    v("seed", seed, "Seed of every random stream (data order, sampling, initialisation).");
    v("max_steps", max_steps, "Optimizer steps to train.", at_least(1));
    v("per_device_train_batch_size", per_device_train_batch_size, "Completions per micro-batch on each device (as in TRL).", at_least(1));
    v("gradient_accumulation_steps", gradient_accumulation_steps, "Micro-batches per optimizer step.", at_least(1));
    v("bf16", bf16, "bf16 autocast of the training forwards on CUDA and on the CPU (matmuls, linears, attention in bf16); float32 master weights (parameters, optimizer state, gradients), loss and log-softmax. On a CPU without avx512_bf16/amx_bf16 bf16 is emulated and slower than float32: config check warns.");
    v("gradient_checkpointing", gradient_checkpointing, "Recompute each decoder block's activations in backward (one more block forward) instead of keeping them: less activation memory, same gradients.");
    v("eval_steps", eval_steps, "Evaluate every N steps; 0 = only at the end.", at_least(0));
    v("eval_num_samples", eval_num_samples, "Samples per eval prompt (k of pass@k); 1 = greedy pass@1 only.", at_least(1));
    v("max_consecutive_nonfinite", max_consecutive_nonfinite, "Stop after this many steps in a row with a non-finite loss or gradient.", at_least(1));
  }
};

struct CheckpointConfig {
  int save_steps = 50;       // 0 = only at the end
  int save_total_limit = 3;  // keep the newest N
  std::string resume;        // "", "auto" or a checkpoint path
  template <class V> void visit(V& v) {
    v("save_steps", save_steps, "Save a checkpoint every N steps; 0 = only at the end.", at_least(0));
    v("save_total_limit", save_total_limit, "Checkpoints kept (the newest).", at_least(1));
    v("resume", resume, "empty: start fresh; auto: newest valid checkpoint in output_dir; or a checkpoint path.");
  }
};

struct LoggingConfig {
  std::string level = "info";
  std::string file_level = "debug";
  int logging_steps = 1;
  std::vector<std::string> report_to = {"jsonl", "tensorboard"};
  int log_completions_steps = 10;  // 0 = never
  int num_completions_to_print = 4;
  int progress_steps = 0;          // 0 = about every 10% of a stage (non-terminal output only)
  template <class V> void visit(V& v) {
    v("level", level, "Console log level: trace, debug, info, warn, error, off.");
    v("file_level", file_level, "Level of the log file in the run directory.");
    v("logging_steps", logging_steps, "Write metrics every N steps.", at_least(1));
    v("report_to", report_to, "Metric sinks: jsonl, tensorboard.");
    v("log_completions_steps", log_completions_steps, "Write sample completions to samples.jsonl every N steps; 0 = never.", at_least(0));
    v("num_completions_to_print", num_completions_to_print, "Completions written each time.", at_least(0));
    v("progress_steps", progress_steps, "Training progress on stderr: on a terminal one line updated every step; otherwise a plain line every N steps (0 = about every 10% of the stage).", at_least(0));
  }
};

enum class DistBackend { AUTO, NCCL, GLOO };
template <> struct EnumNames<DistBackend> {
  static constexpr std::pair<DistBackend, std::string_view> items[] = {
      {DistBackend::AUTO, "auto"}, {DistBackend::NCCL, "nccl"}, {DistBackend::GLOO, "gloo"}};
};
// none = every rank holds everything (DDP); optimizer = ZeRO-1/2 (accelerate/DeepSpeed zero stage
// 1-2, FSDP SHARD_GRAD_OP minus parameter sharding); full = ZeRO-3 / FSDP2 fully_shard (parameters
// too). docs/distributed.md, "Sharded training".
enum class ShardingMode { NONE, OPTIMIZER, FULL };
template <> struct EnumNames<ShardingMode> {
  static constexpr std::pair<ShardingMode, std::string_view> items[] = {
      {ShardingMode::NONE, "none"}, {ShardingMode::OPTIMIZER, "optimizer"}, {ShardingMode::FULL, "full"}};
};
struct DistributedConfig {
  DistBackend backend = DistBackend::AUTO;
  double timeout_s = 300.0;
  double ddp_bucket_cap_mb = 25.0;  // as transformers' TrainingArguments.ddp_bucket_cap_mb
  bool overlap_grad_reduce = true;
  ShardingMode sharding = ShardingMode::NONE;
  bool reshard_after_forward = true;  // FSDP2 fully_shard(reshard_after_forward=True)
  bool forward_prefetch = true;       // FSDP's forward_prefetch
  bool backward_prefetch = true;      // FSDP's backward_prefetch (BACKWARD_PRE when true, None when false)
  double shard_bucket_cap_mb = 25.0;
  int rollout_ranks = 0;  // issue 22: dedicated rollout ranks (0 = off)
  template <class V> void visit(V& v) {
    v("backend", backend, "c10d backend: auto (nccl on CUDA, gloo on CPU), nccl or gloo.");
    v("timeout_s", timeout_s, "A collective that waits longer than this fails the run (a dead or hung rank).", greater_than(0));
    v("ddp_bucket_cap_mb", ddp_bucket_cap_mb, "Gradients are all-reduced in buckets of about this many MiB.", greater_than(0));
    v("overlap_grad_reduce", overlap_grad_reduce, "Start each bucket's all-reduce during backward as soon as its gradients are ready; false = all after backward.");
    v("sharding", sharding, "none: every rank holds parameters, gradients and AdamW state (DDP); optimizer: gradients and AdamW state sharded across ranks (ZeRO-1/2); full: parameters too, gathered block by block (ZeRO-3 / FSDP2).");
    v("reshard_after_forward", reshard_after_forward, "sharding full: free each block's gathered parameters after its forward and gather them again for its backward; false keeps them from forward to backward (one all-gather less per block, more memory).");
    v("forward_prefetch", forward_prefetch, "sharding full: start the next block's all-gather while this block computes its forward.");
    v("backward_prefetch", backward_prefetch, "sharding full: start the previous block's all-gather while this block computes its backward.");
    v("shard_bucket_cap_mb", shard_bucket_cap_mb, "sharding optimizer/full: parameters outside the decoder blocks (all of them with optimizer) are flattened into units of about this many MiB, each reduce-scattered and all-gathered as one collective.", greater_than(0));
    v("rollout_ranks", rollout_ranks, "GRPO stages: the last N ranks only generate and score (with the trainer's weights, sent after each update), the others only train; 0 = every rank does both. Currently N = 1 with 2 processes (one trainer); checked at start against the world size.", at_least(0));
  }
};

}  // namespace grpo::config
