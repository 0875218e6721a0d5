// Resolved configs read back to the same values; defaults, overrides on lists of structs, nulls.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "grpo/config/config.h"
#include "grpo/util/fs.h"

namespace grpo::config {
namespace {

TEST(ConfigRoundTrip, DefaultsDumpAndReload) {
  Config defaults;
  std::string text = dump_config(defaults);
  auto again = load_config_string(text, "dump.yaml");
  EXPECT_EQ(dump_config(again.config), text);
  // Spot-check a few defaults against TRL's GRPOConfig defaults (trl 1.16: beta 0.0, epsilon 0.2,
  // loss_type "dapo", num_generations 8, scale_rewards "group").
  EXPECT_DOUBLE_EQ(again.config.grpo.beta, 0.0);
  EXPECT_DOUBLE_EQ(again.config.grpo.epsilon, 0.2);
  EXPECT_EQ(again.config.grpo.loss_type, LossType::DAPO);
  EXPECT_EQ(again.config.grpo.num_generations, 8);
  EXPECT_EQ(again.config.grpo.scale_rewards, ScaleRewards::GROUP);
  EXPECT_FALSE(again.config.grpo.epsilon_high.has_value());
}

TEST(ConfigRoundTrip, ValuesSurviveDumpAndReload) {
  const char* yaml = R"(
grpo:
  epsilon_high: 0.28
  loss_type: dr_grpo
  num_generations: 4
rollout:
  temperature: 0.7
  stop: ["</answer>", "\n\nUser:"]
reward:
  functions:
    - {name: format, weight: 0.2, mode: soft}
    - {name: math_answer, weight: 1.0, tolerance: 1e-4}
    - {name: length, max_length: 128, buffer_length: 32}
trainer:
  per_device_train_batch_size: 4
  seed: -7
)";
  auto a = load_config_string(yaml, "a.yaml", {"reward.functions.1.weight=2.5", "optimizer.learning_rate=3e-6"});
  ASSERT_EQ(a.config.reward.functions.size(), 3u);
  EXPECT_DOUBLE_EQ(a.config.reward.functions[1].weight, 2.5);
  EXPECT_DOUBLE_EQ(a.config.reward.functions[1].math_answer.tolerance, 1e-4);
  EXPECT_EQ(a.config.reward.functions[0].format.mode, FormatMode::SOFT);
  EXPECT_EQ(a.config.reward.functions[2].length.max_length, 128);
  EXPECT_DOUBLE_EQ(*a.config.grpo.epsilon_high, 0.28);
  EXPECT_EQ(a.config.rollout.stop[1], "\n\nUser:");
  EXPECT_EQ(a.config.trainer.seed, -7);
  EXPECT_DOUBLE_EQ(a.config.optimizer.learning_rate, 3e-6);

  std::string text = dump_config(a.config);
  auto b = load_config_string(text, "b.yaml");
  EXPECT_EQ(dump_config(b.config), text);
  EXPECT_EQ(b.config.rollout.stop[1], "\n\nUser:");
  EXPECT_DOUBLE_EQ(*b.config.grpo.epsilon_high, 0.28);
}

TEST(ConfigRoundTrip, NullResetsOptionalAndOverrideAcceptsLists) {
  auto a = load_config_string("grpo:\n  epsilon_high: 0.3\n", "a.yaml", {"grpo.epsilon_high=null", "rollout.stop_token_ids=[2, 3]"});
  EXPECT_FALSE(a.config.grpo.epsilon_high.has_value());
  EXPECT_EQ(a.config.rollout.stop_token_ids, (std::vector<int>{2, 3}));
}

TEST(ConfigRoundTrip, ResolvedConfigWrittenToRunDir) {
  auto dir = std::filesystem::temp_directory_path() / ("grpo_cfg_rundir_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto a = load_config_string("grpo:\n  beta: 0.04\n", "a.yaml");
  write_resolved_config(a.config, (dir / "run1").string());
  auto b = load_config((dir / "run1" / "config.yaml").string());
  EXPECT_DOUBLE_EQ(b.config.grpo.beta, 0.04);
  EXPECT_EQ(dump_config(b.config), dump_config(a.config));
  std::filesystem::remove_all(dir);
}

TEST(ConfigDocs, EveryLeafKeyDocumentedWithItsDefault) {
  auto rows = document_config();
  auto find = [&](const std::string& key) -> const DocRow* {
    for (const auto& r : rows)
      if (r.key == key) return &r;
    return nullptr;
  };
  const DocRow* g = find("grpo.num_generations");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->type, "int");
  EXPECT_EQ(g->default_value, "8");
  EXPECT_EQ(g->range, ">= 2");
  ASSERT_NE(find("reward.functions[].(math_answer).tolerance"), nullptr);
  for (const auto& r : rows) EXPECT_FALSE(r.doc.empty()) << r.key << " has no doc";
}

}  // namespace
}  // namespace grpo::config
