// The memory estimator of `grpo plan` (grpo/train/memory_plan.h) against independent figures:
// DeepSpeed's published estimator outputs, parameter counts that transformers builds from the
// same config.json files, and hand-computed byte counts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "grpo/config/config.h"
#include "grpo/model/hf_config.h"
#include "grpo/train/memory_plan.h"
#include "grpo/util/error.h"

using namespace grpo;
using train::PlanSharding;

namespace {

constexpr double kGiB = double(1 << 30);

config::Config default_config() { return config::load_config_string("{}").config; }

model::ModelSpec known_spec(const std::string& name) {
  const std::string json = train::known_model_config_json("models/" + name);
  EXPECT_FALSE(json.empty()) << name;
  return model::spec_from_hf_config(nlohmann::json::parse(json), name);
}

}  // namespace

// DeepSpeed's docs (docs/code-docs/source/memory.rst, the estimate_*_model_states_mem_needs_all_cold
// examples) print, for 2851e6 parameters on 1 node x 8 GPUs, "15.93GB" per GPU for ZeRO-2 and,
// with a 32e6-parameter largest layer, "6.09GB" for ZeRO-3 (no offload; DeepSpeed's GB = 2^30
// bytes, printed with 2 decimals); and for t5-large (737.67M parameters, largest layer 32.90M,
// 4 GPUs) "case1 gpu memory: 3291MB" (MiB, truncated). Our formulas with DeepSpeed's byte layout
// must print the same.
TEST(MemoryPlan, ModelStatesMatchDeepSpeedsPublishedEstimates) {
  const auto ds = train::deepspeed_state_bytes();
  const double zero2 = train::model_states(2851e6, 2851e6, 0, 8, PlanSharding::OPTIMIZER, ds).total();
  EXPECT_NEAR(zero2 / kGiB, 15.93, 0.005);
  const double zero3 = train::model_states(2851e6, 2851e6, 32e6, 8, PlanSharding::FULL, ds).total();
  EXPECT_NEAR(zero3 / kGiB, 6.09, 0.005);
  const double t5 = train::model_states(737.67e6, 737.67e6, 32.90e6, 4, PlanSharding::FULL, ds).total();
  EXPECT_EQ(int64_t(t5) >> 20, 3291);
}

// Hand-computed: DeepSpeed's 4P + 16P/N and 4L + 18P/N on Qwen2.5-7B (P = 7,615,616,512 and its
// largest block L = 233,057,792, both counted by transformers), and grpo's own float32 layout:
// 16 bytes per parameter replicated, 4 + 4 + 8/N with the optimizer sharded, 16/N + gathered with
// everything sharded (gathered weights in bf16 under trainer.bf16, their gradients float32).
TEST(MemoryPlan, ModelStatesHandComputed) {
  const double P = 7615616512.0, L = 233057792.0;
  const auto ds = train::deepspeed_state_bytes();
  EXPECT_DOUBLE_EQ(train::model_states(P, P, L, 8, PlanSharding::OPTIMIZER, ds).total(), 45693699072.0);
  EXPECT_DOUBLE_EQ(train::model_states(P, P, L, 8, PlanSharding::FULL, ds).total(), 18067368320.0);
  auto cfg = default_config();
  cfg.trainer.bf16 = true;
  const auto ours = train::grpo_state_bytes(cfg);
  const auto none = train::model_states(P, P, L, 8, PlanSharding::NONE, ours);
  EXPECT_DOUBLE_EQ(none.params, 30462466048.0);
  EXPECT_DOUBLE_EQ(none.grads, 30462466048.0);
  EXPECT_DOUBLE_EQ(none.optimizer, 60924932096.0);
  EXPECT_DOUBLE_EQ(train::model_states(P, P, L, 8, PlanSharding::OPTIMIZER, ours).total(), 68540548608.0);  // 9P
  const auto full = train::model_states(P, P, L, 8, PlanSharding::FULL, ours);
  EXPECT_DOUBLE_EQ(full.params, 3807808256.0 + 466115584.0);  // 4P/8 + 2L
  EXPECT_DOUBLE_EQ(full.grads, 3807808256.0 + 932231168.0);   // 4P/8 + 4L
  EXPECT_DOUBLE_EQ(full.optimizer, 7615616512.0);             // 8P/8
  // LoRA: gradients and moments only for the adapters.
  const auto lora = train::model_states(P, 1e6, L, 1, PlanSharding::NONE, ours);
  EXPECT_DOUBLE_EQ(lora.total(), 4 * P + 12e6);
}

// Parameter counts of the built-in shapes, against transformers' sum(p.numel()) over
// AutoModelForCausalLM.from_config(config.json) (built on the meta device, transformers 4.x of
// the tooling venv) and its model.layers[0] for the largest block.
TEST(MemoryPlan, ParameterCountsMatchTransformers) {
  const std::tuple<const char*, int64_t, int64_t> expected[] = {
      {"Qwen2.5-1.5B-Instruct", 1543714304, 46797824}, {"Qwen2.5-3B-Instruct", 3085938688, 77076992},
      {"Qwen2.5-7B-Instruct", 7615616512, 233057792},  {"Qwen3-1.7B", 1720574976, 50336000},
      {"Qwen1.5-MoE-A2.7B-Chat", 14315784192, 570560512}};
  for (const auto& [name, total, block] : expected) {
    const auto spec = known_spec(name);
    const auto pc = train::count_parameters(spec, config::LoraConfig{});
    EXPECT_EQ(pc.total, total) << name;
    EXPECT_EQ(pc.largest_block, block) << name;
    EXPECT_EQ(pc.total, spec.parameter_count()) << name;  // and the model layer's own count
    EXPECT_EQ(pc.trainable, pc.total) << name;
  }
  EXPECT_EQ(train::known_model_config_json("models/no-such-model"), "");
  EXPECT_NE(train::known_model_config_json("/x/QWEN2.5-7B-INSTRUCT/"), "");  // case, trailing slash
}

// The KV cache and the reference model, hand-computed for Qwen2.5-7B: 28 layers x 2 x 4 kv heads x
// 128 = 28672 values per token; 16 completions per rank (8 x 2), 4 generations -> 16 rows + 4
// prefill rows of 320 + 1024 tokens, float32.
TEST(MemoryPlan, KvCacheAndReferenceHandComputed) {
  auto cfg = default_config();
  cfg.trainer.per_device_train_batch_size = 8;
  cfg.trainer.gradient_accumulation_steps = 2;
  cfg.grpo.num_generations = 4;
  cfg.grpo.beta = 0.04;
  cfg.data.max_prompt_length = 320;
  cfg.rollout.max_completion_length = 1024;
  cfg.rollout.max_batch_size = 64;
  const auto spec = known_spec("Qwen2.5-7B-Instruct");
  train::PlanTarget t;
  t.world = 8;
  const auto plans = train::plan_memory(cfg, spec, t);
  ASSERT_EQ(plans.size(), 3u);
  // Under full the reference is sharded (dist/sharded_reference.h): embedding + untied head +
  // final norm whole (2 x 152064 x 3584 + 3584), 1/8 of the 28 blocks, two blocks gathered.
  const double root = 2.0 * 152064 * 3584 + 3584, blocks = 7615616512.0 - root;
  const double sharded_reference = (root + blocks / 8 + 2 * (blocks / 28)) * 4;
  for (const auto& p : plans) {
    EXPECT_DOUBLE_EQ(p.kv_cache, 20.0 * 1344 * 28672 * 4) << train::sharding_name(p.mode);
    EXPECT_DOUBLE_EQ(p.reference, p.mode == config::ShardingMode::FULL ? sharded_reference : 7615616512.0 * 4)
        << train::sharding_name(p.mode);
    EXPECT_GT(p.activations_plain, p.activations_ckpt);
    EXPECT_GE(p.peak(), p.states.params + p.states.optimizer);
  }
  // max_batch_size caps the rows; beta 0 drops the reference.
  cfg.rollout.max_batch_size = 8;
  cfg.grpo.beta = 0;
  const auto capped = train::plan_memory(cfg, spec, t);
  EXPECT_DOUBLE_EQ(capped[0].kv_cache, 10.0 * 1344 * 28672 * 4);
  EXPECT_EQ(capped[0].reference, 0.0);
  // Full sharding: the rollout gathers the whole float32 policy; the others use their replica.
  EXPECT_DOUBLE_EQ(capped[2].rollout_copy, 7615616512.0 * 4);
  EXPECT_EQ(capped[0].rollout_copy, 0.0);
  EXPECT_LT(capped[2].peak(), capped[1].peak());
  EXPECT_LT(capped[1].peak(), capped[0].peak());
}

TEST(MemoryPlan, AdviceTurnsKnobsUntilItFits) {
  auto cfg = default_config();
  cfg.trainer.per_device_train_batch_size = 8;
  cfg.trainer.gradient_accumulation_steps = 8;
  cfg.data.max_prompt_length = 320;
  cfg.rollout.max_completion_length = 1024;
  cfg.trainer.bf16 = true;
  const auto spec = known_spec("Qwen2.5-7B-Instruct");
  train::PlanTarget t{8, false, 80 * kGiB};
  const auto a = train::advise(cfg, spec, t, PlanSharding::NONE);
  ASSERT_FALSE(a.changes.empty());
  EXPECT_EQ(a.changes.front(), "distributed.sharding=full");
  EXPECT_TRUE(a.fits);
  EXPECT_TRUE(train::plan_fits(a.peak, t));
  // 1 GiB fits nothing a 7B model can do.
  const auto none = train::advise(cfg, spec, train::PlanTarget{8, false, 1 * kGiB}, PlanSharding::NONE);
  EXPECT_FALSE(none.fits);
  EXPECT_EQ(none.changes.back(), "lora.r=16");
}

TEST(MemoryPlan, ParsesMemorySizes) {
  EXPECT_DOUBLE_EQ(train::parse_memory_size("80GiB"), 80 * kGiB);
  EXPECT_DOUBLE_EQ(train::parse_memory_size("80GB"), 80e9);
  EXPECT_DOUBLE_EQ(train::parse_memory_size("512MiB"), 512.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(train::parse_memory_size("1.5TiB"), 1.5 * 1024 * kGiB);
  EXPECT_DOUBLE_EQ(train::parse_memory_size("1000"), 1000);
  EXPECT_THROW(train::parse_memory_size("80 parsecs"), InputError);
  EXPECT_THROW(train::parse_memory_size("GiB"), InputError);
}
