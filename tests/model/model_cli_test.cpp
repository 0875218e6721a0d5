// `grpo model info|convert` through the real executable.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "grpo/model/hf_weights.h"
#include "test_support.h"

namespace grpo::model {
namespace {

std::pair<int, std::string> run(const std::string& args) {
  std::string cmd = std::string(GRPO_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p && std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  int rc = p ? ::pclose(p) : -1;
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

TEST(ModelCli, InfoReportsArchitectureAndParameterCounts) {
  const std::string dir = testing::tiny_models_dir() + "/qwen2_moe";
  // Independent count: the elements stored in the checkpoint itself.
  int64_t stored = 0;
  safetensors::File file(dir + "/model.safetensors");
  for (const auto& t : file.tensors()) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    stored += n;
  }
  auto [rc, out] = run("model info " + dir);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("architecture: Qwen2MoeForCausalLM"), std::string::npos) << out;
  EXPECT_NE(out.find("parameters: " + std::to_string(stored) + " "), std::string::npos) << out;
  // Active per token: 2 of 4 routed experts, each 3 * 64 * 48 weights, in the one MoE layer.
  EXPECT_NE(out.find("active_parameters_per_token: " + std::to_string(stored - 2 * 3 * 64 * 48) + " "),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("vocab_size: 256"), std::string::npos) << out;
  EXPECT_NE(out.find("dtype: float32"), std::string::npos) << out;
}

TEST(ModelCli, ConvertRoundTripsAndBadPathExitsWithTwo) {
  const std::string src = testing::tiny_models_dir() + "/mixtral";
  const std::string dst = testing::build_dir() + "/model_cli_test/mixtral";
  std::filesystem::remove_all(dst);
  auto [rc, out] = run("model convert " + src + " " + dst);
  ASSERT_EQ(rc, 0) << out;
  auto a = load_hf(src), b = load_hf(dst);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto [rc2, out2] = run("model info " + testing::build_dir() + "/no/such/model");
  EXPECT_EQ(rc2, 2) << out2;
  EXPECT_NE(out2.find("no such file or directory"), std::string::npos) << out2;
}

}  // namespace
}  // namespace grpo::model
