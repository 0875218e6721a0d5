#pragma once
// Per-rank memory of one GRPO training step, by part, for each data-parallel sharding mode
// (`grpo plan`, docs/distributed.md "Memory planning"). Everything is in BYTES per rank (one GPU,
// or one CPU process); parameter counts are plain element counts.
//
// Model states (parameters, gradients, optimizer state), with P parameters of which T are
// trainable, N ranks, G parameters held gathered at once under full sharding, and per-parameter
// byte sizes b = StateBytes:
//   none      params = P*b.param          grads = T*b.grad               optim = T*(b.master + b.moments + b.fp32_grad)
//   optimizer params = P*b.param          grads = T*b.grad + T*b.fp32_grad/N   optim = T*(b.master + b.moments)/N
//   full      params = P*b.param/N + G*b.gathered_param
//             grads  = T*(b.fp32_grad > 0 ? b.fp32_grad : b.grad)/N + G*b.gathered_grad
//             optim  = T*(b.master + b.moments)/N
// With DeepSpeed's mixed-precision layout (fp16 params 2, fp16 grads 2, fp32 master 4, Adam
// moments 8, fp32 gradient partition 4; deepspeed_state_bytes()) these are DeepSpeed's own
// estimators (deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs:
// 4P + 16P/N without offload; stage3.py estimate_zero3_model_states_mem_needs: 4L + 18P/N with
// L = largest layer), which tests/train/memory_plan_test.cpp checks. grpo's layout
// (grpo_state_bytes()): G = the largest unit outside the blocks (the embedding or head) + one block
// + one prefetched block (all blocks + that unit with distributed.reshard_after_forward false);
// parameters in model.dtype (float32: they are the master weights, so
// master = 0), gradients in model.dtype, AdamW's two moments in model.dtype (torch keeps them in
// the parameter's dtype), no separate fp32 gradient; under full sharding the gathered copy is
// bf16 when trainer.bf16 (issue 16: bf16 all-gather, fp32 master shards). So 16 bytes/parameter
// replicated (none), 4 + 4 + 8/N (optimizer: the full gradients exist during backward before they
// are reduce-scattered, as DeepSpeed's ZeRO-2 formula counts them), 16/N + gathered blocks (full):
// the 16 (fp32) and 18 (mixed precision) bytes of DeepSpeed's and Unsloth's tables, less the fp16
// working copy we do not keep.
//
// The rest of the step, which DeepSpeed's estimators leave out and a GRPO step needs:
//  - reference model (grpo.beta > 0 or grpo.log_kl, no LoRA): P*bytes(model.dtype), replicated
//    under none and optimizer; under full (dist/sharded_reference.h) the parameters outside the
//    blocks whole, 1/N of the blocks, and two blocks gathered while its forward runs.
//  - rollout KV cache: (rows + prefill_rows) * capacity * layers * 2 (K and V) * kv_heads * head_dim
//    * bytes, rows = min(rollout.max_batch_size, completions per rank per step), prefill_rows =
//    ceil(rows / num_generations) (a prompt's prefill cache lives beside the batch while it is
//    admitted), capacity = data.max_prompt_length + rollout.max_completion_length (an upper bound:
//    the engine sizes rows by the longest prompt of the step). dtype: bf16 on a CPU under
//    trainer.bf16, else model.dtype.
//  - rollout weight copy: full sharding gathers the whole model once per step for generation (one
//    copy, freed before the update; verl's hybrid engine), in bf16 when the rollout runs under bf16
//    autocast (a CPU with trainer.bf16: the bf16 all-gather is kept as is), else in model.dtype; on a CPU the
//    engine keeps oneDNN-packed copies of every linear weight (bf16 under trainer.bf16, else
//    float32) and of the float32 output head for all of the step (model/packed_linear.h).
//  - activations of one micro-batch of per_device_train_batch_size sequences of `capacity`
//    tokens (Korthikanti et al. 2022, "Reducing Activation Recomputation", sec. 4.1, adapted to
//    SwiGLU, grouped-query attention and fused attention that stores no [T, T] scores): per layer
//    and token, 2*hidden residual-stream values in model.dtype plus hidden*2 + q + attention output
//    + k + v + 3*(intermediate, or top_k*moe_intermediate + shared) values in the compute dtype
//    (bf16 under trainer.bf16); with gradient checkpointing only each block's input is kept and
//    one block is recomputed at a time. Plus the autocast bf16 weight copies (trainer.bf16 over
//    float32 weights, not under full sharding, whose gathered blocks already are bf16) and the
//    token-logprob chunks (kernels.logprob_chunk_size x completion tokens x 4 bytes x 3).
// Peak = max(rollout phase, update phase): the rollout holds parameters, optimizer state, the
// reference, the rollout copy, the KV cache and the sampler's [rows, vocab] buffers (gradients
// are freed by zero_grad after each step); the update holds parameters, gradients, optimizer
// state, the reference, the activations (and on a CPU the packed copy).
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/model/model_spec.h"

namespace grpo::train {

/// Data-parallel sharding mode (distributed.sharding): NONE = replicas (DDP, ZeRO-0), OPTIMIZER =
/// ZeRO-1/2 (optimizer state and gradients sharded), FULL = ZeRO-3 / FSDP (parameters too).
using PlanSharding = config::ShardingMode;
const char* sharding_name(PlanSharding s);

/// Bytes per parameter of each model state (see the header comment).
struct StateBytes {
  double param = 4, grad = 4, master = 0, moments = 8, fp32_grad = 0;
  double gathered_param = 4, gathered_grad = 4;  // full sharding: a gathered unit's weights and gradients
};
StateBytes deepspeed_state_bytes();  // fp16 mixed precision with fp32 master (DeepSpeed, Unsloth's tables)
StateBytes grpo_state_bytes(const config::Config& cfg);

struct ModelStates {
  double params = 0, grads = 0, optimizer = 0;  // bytes per rank
  double total() const { return params + grads + optimizer; }
};
/// The formulas above: `total` parameters, `trainable` of them, `gathered` held gathered at once
/// under FULL, `world` ranks.
ModelStates model_states(double total, double trainable, double gathered, int world, PlanSharding mode,
                         const StateBytes& b);

/// Parameter counts of a model (elements).
struct ParamCounts {
  int64_t total = 0;
  int64_t trainable = 0;    // total, or the LoRA adapters' parameters when lora.r > 0
  int64_t largest_block = 0;  // the largest decoder block (one flat shard unit under full sharding)
  int64_t root = 0;         // embedding, untied head and final norm (the root shard unit)
  int64_t linear = 0;       // weights of the decoder blocks' linears (what the CPU rollout packs)
  int64_t head = 0;         // the output head's weight (the embedding when tied)
};
ParamCounts count_parameters(const model::ModelSpec& spec, const config::LoraConfig& lora);

/// One sharding mode's plan; bytes per rank.
struct MemoryPlan {
  PlanSharding mode = PlanSharding::NONE;
  ModelStates states;
  double reference = 0;
  double kv_cache = 0;
  double rollout_copy = 0;        // the gathered bf16 copy (full) / the CPU packed copy
  double rollout_buffers = 0;     // sampler logits and prefill activations
  double activations = 0;         // with the configured trainer.gradient_checkpointing
  double activations_plain = 0;   // without gradient checkpointing
  double activations_ckpt = 0;    // with gradient checkpointing
  double rollout_phase = 0, update_phase = 0;
  double peak() const { return rollout_phase > update_phase ? rollout_phase : update_phase; }
};

/// Where the step runs: a CPU process, or a GPU (CUDA context and allocator overhead).
struct PlanTarget {
  int world = 1;
  bool cpu = false;
  double memory = 0;  // bytes available per rank; 0: unknown (no fit verdict)
};

/// The plan of every mode for `cfg` on `spec`.
std::vector<MemoryPlan> plan_memory(const config::Config& cfg, const model::ModelSpec& spec, const PlanTarget& t);

/// True when `peak` fits `t.memory`: on a GPU, peak * 1.1 (allocator fragmentation) + 2 GiB (CUDA
/// context, NCCL buffers) <= memory; on a CPU, peak <= memory.
bool plan_fits(double peak, const PlanTarget& t);

/// The config changes ("key=value"), tried cumulatively in this order until the plan of the
/// resulting mode fits: distributed.sharding=full, trainer.gradient_checkpointing=true, halving
/// trainer.per_device_train_batch_size (doubling gradient_accumulation_steps: the same global
/// batch), halving rollout.max_batch_size, lora.r=16. Empty when it fits as configured; `fits`
/// false when even all of them do not.
struct Advice {
  std::vector<std::string> changes;
  bool fits = false;
  double peak = 0;
};
Advice advise(const config::Config& cfg, const model::ModelSpec& spec, const PlanTarget& t, PlanSharding start);

/// The model to plan for, without loading weights: `model_config` (a Hugging Face config.json)
/// when given; else model.path's config.json, .gguf metadata or grpo weights directory; else, when
/// model.path does not exist, the built-in shapes of known models by the path's last component
/// (known_model_shapes.cpp); else (no path) the model: section, the vocabulary from
/// model.vocab_size, the tokenizer file, or task.tokenizer_vocab_size. Throws grpo::InputError.
model::ModelSpec plan_model_spec(const config::Config& cfg, const std::string& model_config);

/// The config.json text of a known model whose weights need not be on disk ("Qwen2.5-7B-Instruct",
/// matched case-insensitively on the last path component), or "" when unknown.
std::string known_model_config_json(const std::string& path);

/// Parses "80GiB", "80GB", "81920MiB", "1.5TiB" or a plain byte count. Throws grpo::InputError.
double parse_memory_size(const std::string& s);

}  // namespace grpo::train
