// `grpo plan` on every shipped research config (issue 16): each one gets the per-rank table with a
// peak row for the three sharding modes and a verdict; the 7B full-sharding config must fit in 80 GiB
// as its comment claims.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/subprocess.h"

namespace {

TEST(PlanCli, EveryResearchConfigGetsATableAndAVerdict) {
  const std::filesystem::path dir = std::filesystem::path(GRPO_SOURCE_DIR) / "configs" / "research";
  int configs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    ++configs;
    auto r = grpo::testing::run_grpo("plan " + e.path().string() + " --nproc 8 --gpu-memory 80GiB");
    ASSERT_EQ(r.rc, 0) << e.path() << ": " << r.err;
    for (const char* part : {"parameters", "gradients", "optimizer", "peak", "fits in 80.00 GiB", "verdict:"})
      EXPECT_NE(r.out.find(part), std::string::npos) << e.path() << " output lacks '" << part << "':\n" << r.out;
    if (e.path().filename() == "qwen2.5-7b-gsm8k-8gpu-fsdp.yaml")
      EXPECT_NE(r.out.find("verdict: fits (sharding full"), std::string::npos) << r.out;
  }
  EXPECT_GE(configs, 5) << "no research configs found under " << dir;
}

TEST(PlanCli, BadMemorySizeIsOneClearError) {
  auto r = grpo::testing::run_grpo("plan " + std::string(GRPO_SOURCE_DIR) +
                                   "/configs/research/qwen2.5-1.5b-gsm8k.yaml --gpu-memory eighty");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("eighty"), std::string::npos) << r.err;
}

}  // namespace
