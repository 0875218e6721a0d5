// The per-rank memory estimator of `grpo plan`; formulas and sources in grpo/train/memory_plan.h.
#include "grpo/train/memory_plan.h"

#include <algorithm>
#include <cmath>

#include "grpo/util/error.h"

namespace grpo::train {
namespace {

double dtype_bytes(config::DType d) {
  return d == config::DType::FLOAT64 ? 8.0 : d == config::DType::FLOAT32 ? 4.0 : 2.0;
}

// Completions per micro-batch on each rank: the largest of the stages' (a stage's 0 = trainer's).
int64_t micro_batch(const config::Config& cfg) {
  int64_t mb = cfg.trainer.per_device_train_batch_size;
  for (const auto& s : cfg.stages)
    if (s.per_device_train_batch_size > 0) mb = std::max<int64_t>(mb, s.per_device_train_batch_size);
  return mb;
}

bool has_grpo_stage(const config::Config& cfg) {
  if (cfg.stages.empty()) return true;
  for (const auto& s : cfg.stages)
    if (s.kind == config::StageKind::GRPO) return true;
  return false;
}

// Attention parameters of one block, and the weights of its linears among them.
std::pair<int64_t, int64_t> attention_params(const model::ModelSpec& s) {
  const int64_t h = s.hidden_size, q = int64_t(s.num_attention_heads) * s.head_dim,
                kv = int64_t(s.num_key_value_heads) * s.head_dim;
  const int64_t linear = h * q + 2 * h * kv + q * h;
  int64_t total = linear + 2 * h;  // + input and post-attention RMSNorm
  if (s.attention_bias) total += q + 2 * kv;
  if (s.qk_norm) total += 2 * s.head_dim;
  return {total, linear};
}

// Feed-forward parameters of block i (all of them are linear weights).
int64_t ffn_params(const model::ModelSpec& s, int i) {
  const int64_t h = s.hidden_size;
  if (!s.is_moe_layer(i)) return 3 * h * s.intermediate_size;
  const auto& m = s.moe;
  int64_t n = h * m.num_experts + int64_t(m.num_experts) * 3 * h * m.moe_intermediate_size;
  if (m.n_shared_experts > 0) n += 3 * h * m.shared_intermediate_size;
  if (m.shared_expert_gate) n += h;
  return n;
}

// LoRA adapter parameters: r * (in + out) for each targeted linear of every block (PEFT's
// "all-linear": attention and feed-forward projections; routed experts counted like dense MLPs).
int64_t lora_params(const model::ModelSpec& s, const config::LoraConfig& lora) {
  auto targeted = [&](const std::string& name) {
    for (const auto& t : lora.target_modules)
      if (t == "all-linear" || t == name) return true;
    return false;
  };
  const int64_t h = s.hidden_size, q = int64_t(s.num_attention_heads) * s.head_dim,
                kv = int64_t(s.num_key_value_heads) * s.head_dim;
  int64_t per_layer = 0;
  if (targeted("q_proj")) per_layer += h + q;
  if (targeted("k_proj")) per_layer += h + kv;
  if (targeted("v_proj")) per_layer += h + kv;
  if (targeted("o_proj")) per_layer += q + h;
  int64_t n = 0;
  for (int i = 0; i < s.num_hidden_layers; ++i) {
    int64_t ffn = 0;
    const int64_t inter = s.is_moe_layer(i) ? s.moe.moe_intermediate_size : s.intermediate_size;
    const int64_t copies = s.is_moe_layer(i) ? s.moe.num_experts : 1;
    if (targeted("gate_proj")) ffn += h + inter;
    if (targeted("up_proj")) ffn += h + inter;
    if (targeted("down_proj")) ffn += inter + h;
    n += per_layer + copies * ffn;
  }
  return int64_t(lora.r) * n;
}

// Activation elements one token keeps in one block for backward (header: Korthikanti et al.),
// split into residual-stream values (model dtype) and compute-dtype values.
struct TokenActs {
  double residual = 0, compute = 0;
};
TokenActs token_activations(const model::ModelSpec& s, int i) {
  const double h = s.hidden_size, q = double(s.num_attention_heads) * s.head_dim,
               kv = double(s.num_key_value_heads) * s.head_dim;
  double inter = s.intermediate_size, router = 0;
  if (s.is_moe_layer(i)) {
    inter = double(s.moe.top_k) * s.moe.moe_intermediate_size + s.moe.shared_intermediate_size;
    router = 2.0 * s.moe.num_experts;  // router logits and probabilities
  }
  return {2 * h + router, 2 * h + 2 * q + 2 * kv + 3 * inter};
}

struct Activations {
  double plain = 0, ckpt = 0;
};

// One micro-batch's training activations in bytes (header), without and with checkpointing.
Activations training_activations(const config::Config& cfg, const model::ModelSpec& s, int64_t tokens,
                                 int64_t completion_tokens) {
  const double rb = dtype_bytes(cfg.model.dtype), cb = cfg.trainer.bf16 ? 2.0 : rb;
  double layers = 0, largest = 0;
  for (int i = 0; i < s.num_hidden_layers; ++i) {
    const TokenActs a = token_activations(s, i);
    const double bytes = double(tokens) * (a.residual * rb + a.compute * cb);
    layers += bytes;
    largest = std::max(largest, bytes);
  }
  // Backward's transient gradients of one block's activations (a residual and an intermediate).
  const double grad_buffers = double(tokens) * (2.0 * s.hidden_size * rb + 2.0 * s.intermediate_size * cb);
  // The final norm's input and the token-logprob chunks: logits, softmax and their gradient.
  const double head = double(tokens) * s.hidden_size * rb +
                      double(completion_tokens) * std::min<int64_t>(cfg.kernels.logprob_chunk_size, s.vocab_size) * 4.0 * 3;
  const double inputs = double(tokens) * s.hidden_size * rb * s.num_hidden_layers;  // checkpointed block inputs
  return {layers + grad_buffers + head, inputs + largest + grad_buffers + head};
}

}  // namespace

const char* sharding_name(PlanSharding s) {
  for (const auto& [value, name] : config::EnumNames<config::ShardingMode>::items)
    if (value == s) return name.data();  // the names are string literals
  return "?";
}

StateBytes deepspeed_state_bytes() { return {2, 2, 4, 8, 4, 2, 2}; }

StateBytes grpo_state_bytes(const config::Config& cfg) {
  const double pb = dtype_bytes(cfg.model.dtype);
  const double gathered = cfg.trainer.bf16 ? 2.0 : pb;
  return {pb, pb, 0, 2 * pb, 0, gathered, pb};
}

ModelStates model_states(double total, double trainable, double gathered, int world, PlanSharding mode,
                         const StateBytes& b) {
  GRPO_REQUIRE(world >= 1, "model_states: world size ", world, ": expected >= 1");
  const double n = world;
  switch (mode) {
    case PlanSharding::NONE:
      return {total * b.param, trainable * b.grad, trainable * (b.master + b.moments + b.fp32_grad)};
    case PlanSharding::OPTIMIZER:
      return {total * b.param, trainable * b.grad + trainable * b.fp32_grad / n, trainable * (b.master + b.moments) / n};
    case PlanSharding::FULL:
      return {total * b.param / n + gathered * b.gathered_param,
              trainable * (b.fp32_grad > 0 ? b.fp32_grad : b.grad) / n + gathered * b.gathered_grad,
              trainable * (b.master + b.moments) / n};
  }
  return {};
}

ParamCounts count_parameters(const model::ModelSpec& s, const config::LoraConfig& lora) {
  ParamCounts c;
  const auto [attn, attn_linear] = attention_params(s);
  for (int i = 0; i < s.num_hidden_layers; ++i) {
    const int64_t ffn = ffn_params(s, i);
    c.largest_block = std::max(c.largest_block, attn + ffn);
    c.linear += attn_linear + ffn;
    c.total += attn + ffn;
  }
  const int64_t embed = int64_t(s.vocab_size) * s.hidden_size;
  c.root = embed + (s.tie_word_embeddings ? 0 : embed) + s.hidden_size;
  c.head = embed;
  c.total += c.root;
  c.trainable = lora.enabled() ? lora_params(s, lora) : c.total;
  return c;
}

std::vector<MemoryPlan> plan_memory(const config::Config& cfg, const model::ModelSpec& s, const PlanTarget& t) {
  const ParamCounts pc = count_parameters(s, cfg.lora);
  const StateBytes sb = grpo_state_bytes(cfg);
  const double pb = dtype_bytes(cfg.model.dtype);
  const int64_t mb = micro_batch(cfg);
  const int64_t capacity = int64_t(cfg.data.max_prompt_length) + cfg.rollout.max_completion_length;
  const Activations act = training_activations(cfg, s, mb * capacity, mb * cfg.rollout.max_completion_length);
  // Rollout batch: this rank's completions of a step, at most max_batch_size (and the KV budget) at once.
  const bool grpo = has_grpo_stage(cfg);
  const int64_t G = std::max(1, cfg.grpo.num_generations);
  int64_t rows = std::min<int64_t>(cfg.rollout.max_batch_size, mb * cfg.trainer.gradient_accumulation_steps);
  if (cfg.rollout.kv_cache_budget_tokens > 0)
    rows = std::max<int64_t>(1, std::min<int64_t>(rows, cfg.rollout.kv_cache_budget_tokens / capacity - 1));
  const int64_t prefill_rows = (rows + G - 1) / G;
  const double kv_per_row = double(capacity) * s.num_hidden_layers * 2.0 * s.num_key_value_heads * s.head_dim;
  const bool reference = grpo && (cfg.grpo.beta > 0 || cfg.grpo.log_kl) && !cfg.lora.enabled();
  // Sampler: logits, probabilities, sorted values (float32) and their int64 indices; prefill: one
  // block's values for the admitted prompts.
  const double sampler = grpo ? double(rows) * s.vocab_size * (3 * 4.0 + 8.0) +
                                    double(prefill_rows) * cfg.data.max_prompt_length *
                                        (4.0 * s.hidden_size + 2.0 * s.intermediate_size) * 4.0
                              : 0.0;
  std::vector<MemoryPlan> out;
  for (PlanSharding mode : {PlanSharding::NONE, PlanSharding::OPTIMIZER, PlanSharding::FULL}) {
    MemoryPlan p;
    p.mode = mode;
    const bool full = mode == PlanSharding::FULL;
    // Full sharding holds gathered the largest unit outside the blocks (the embedding or head: one
    // tensor larger than shard_bucket_cap_mb is a unit of its own), the running block and the
    // prefetched one; without reshard_after_forward every block stays gathered until its backward.
    const auto& d = cfg.distributed;
    const double blocks = double(pc.total - pc.root);
    const double gathered = double(pc.head) + (d.reshard_after_forward
                                                   ? double(pc.largest_block) * ((d.forward_prefetch || d.backward_prefetch) ? 2 : 1)
                                                   : blocks);
    p.states = model_states(double(pc.total), double(pc.trainable), gathered, t.world, mode, sb);
    // The reference: replicated, except under full (dist/sharded_reference.h): the parameters
    // outside the blocks whole, 1/N of each block, and the block running plus the prefetched one.
    p.reference = !reference ? 0.0
                  : full     ? (double(pc.root) + blocks / t.world + 2.0 * double(pc.largest_block)) * pb
                             : double(pc.total) * pb;
    // The rollout computes under bf16 autocast on a CPU with trainer.bf16 (rollout/engine.h).
    const double rollout_bytes = t.cpu && cfg.trainer.bf16 ? 2.0 : pb;
    p.kv_cache = grpo ? double(rows + prefill_rows) * kv_per_row * rollout_bytes : 0.0;
    double persistent_copy = 0;
    if (t.cpu && cfg.rollout.max_completion_length >= 4)  // rollout/engine.cpp packs from 4 new tokens on
      persistent_copy = double(pc.linear) * (cfg.trainer.bf16 ? 2.0 : 4.0) + (pb == 4.0 ? double(pc.head) * 4.0 : 0.0);
    // Full sharding gathers the whole policy once for generation: bf16 when the rollout computes
    // under bf16 autocast (the bf16 all-gather kept as is), else in the parameters' dtype.
    p.rollout_copy = persistent_copy + (full && grpo ? double(pc.total) * rollout_bytes : 0.0);
    p.rollout_buffers = sampler;
    p.activations_plain = act.plain;
    p.activations_ckpt = act.ckpt;
    p.activations = cfg.trainer.gradient_checkpointing ? act.ckpt : act.plain;
    // Autocast keeps a bf16 copy of every linear weight it casts until backward has used it.
    if (cfg.trainer.bf16 && pb == 4.0 && !full) p.activations += double(pc.linear) * 2.0;
    const double optimizer_and_params = p.states.params + p.states.optimizer + p.reference;
    p.rollout_phase = grpo ? optimizer_and_params + p.rollout_copy + p.kv_cache + p.rollout_buffers : 0.0;
    p.update_phase = optimizer_and_params + p.states.grads + p.activations + persistent_copy;
    out.push_back(p);
  }
  return out;
}

Advice advise(const config::Config& cfg, const model::ModelSpec& spec, const PlanTarget& t, PlanSharding start) {
  config::Config c = cfg;
  PlanSharding mode = start;
  Advice a;
  // One entry per knob: a repeated halving replaces the knob's previous entry.
  auto set_change = [&](const std::string& prefix, const std::string& text) {
    if (!a.changes.empty() && a.changes.back().rfind(prefix, 0) == 0) a.changes.pop_back();
    a.changes.push_back(text);
  };
  auto peak = [&] { return plan_memory(c, spec, t)[static_cast<size_t>(mode)].peak(); };
  auto done = [&] {
    a.peak = peak();
    a.fits = plan_fits(a.peak, t);
    return a.fits;
  };
  if (done()) return a;
  mode = PlanSharding::FULL;
  a.changes.push_back("distributed.sharding=full");  // also when already full: changes is never empty below
  if (start != PlanSharding::FULL && done()) return a;
  if (start == PlanSharding::FULL) a.changes.pop_back();
  if (!c.trainer.gradient_checkpointing) {
    c.trainer.gradient_checkpointing = true;
    a.changes.push_back("trainer.gradient_checkpointing=true");
    if (done()) return a;
  }
  // Halving the micro-batch and doubling accumulation keeps the global batch (and the rollout
  // batch, which is per_device x accumulation); then the rollout's own batch.
  while (c.trainer.per_device_train_batch_size > 1) {
    c.trainer.per_device_train_batch_size /= 2;
    c.trainer.gradient_accumulation_steps *= 2;
    for (auto& s : c.stages) s.per_device_train_batch_size /= 2;
    set_change("trainer.per_device", str("trainer.per_device_train_batch_size=", c.trainer.per_device_train_batch_size,
                            " trainer.gradient_accumulation_steps=", c.trainer.gradient_accumulation_steps));
    if (done()) return a;
  }
  while (c.rollout.max_batch_size > 1) {
    c.rollout.max_batch_size /= 2;
    set_change("rollout.max_batch_size", str("rollout.max_batch_size=", c.rollout.max_batch_size));
    if (done()) return a;
  }
  if (!c.lora.enabled()) {
    c.lora.r = 16;
    a.changes.push_back("lora.r=16");
    done();
  }
  return a;
}

bool plan_fits(double peak, const PlanTarget& t) {
  if (t.memory <= 0) return true;
  if (t.cpu) return peak <= t.memory;
  return peak * 1.1 + 2.0 * (1 << 30) <= t.memory;
}

double parse_memory_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw InputError(str("memory size '", text, "': expected a number with an optional unit (80GiB, 80GB, 512MiB)"));
  }
  std::string unit = text.substr(used);
  const std::pair<const char*, double> units[] = {{"", 1},          {"B", 1},         {"KB", 1e3},
                                                  {"MB", 1e6},      {"GB", 1e9},      {"TB", 1e12},
                                                  {"KiB", 1024.0},  {"MiB", 1 << 20}, {"GiB", double(1 << 30)},
                                                  {"TiB", double(1 << 30) * 1024}, {"K", 1024.0}, {"M", 1 << 20},
                                                  {"G", double(1 << 30)}, {"T", double(1 << 30) * 1024}};
  for (const auto& [name, scale] : units)
    if (unit == name) {
      GRPO_REQUIRE(v > 0, "memory size '", text, "': expected > 0");
      return v * scale;
    }
  throw InputError(str("memory size '", text, "': unknown unit '", unit, "' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"));
}

}  // namespace grpo::train
