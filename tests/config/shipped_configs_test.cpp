// Every config we ship (configs/*.yaml, configs/research/*.yaml) passes `grpo config check`, and
// the path expansion that lets a shipped config name set-up-time assets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/env_guard.h"
#include "common/subprocess.h"
#include "grpo/config/config.h"
#include "grpo/util/fs.h"

namespace grpo::config {
namespace {

namespace sfs = std::filesystem;

using grpo::testing::EnvGuard;

std::vector<std::string> yaml_files(const sfs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : sfs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedConfigs, EveryConfigPassesConfigCheck) {
  const sfs::path root(GRPO_SOURCE_DIR);
  auto files = yaml_files(root / "configs");
  auto research = yaml_files(root / "configs" / "research");
  EXPECT_GE(files.size(), 3u) << "configs/: quickstart, ci-smoke, smollm2-gsm8k at least";
  EXPECT_GE(research.size(), 5u) << "configs/research/: dense gsm8k, dense math, moe, multi-gpu, fp8";
  files.insert(files.end(), research.begin(), research.end());
  for (const auto& f : files) {
    // --no-files: the values only; the models they name are fetched at set-up (or by the user).
    auto r = grpo::testing::run_cmd(std::string(GRPO_BIN) + " config check --no-files " + f);
#ifndef GRPO_BUILD_HAS_CUDA_KERNELS
    // The FP8 config needs the CUDA kernels: a build without them refuses it, naming the key.
    if (f.find("-fp8.yaml") != std::string::npos) {
      EXPECT_NE((r.out + r.err).find("kernels.fp8: this build has no CUDA kernels"), std::string::npos) << r.out << r.err;
      continue;
    }
#endif
    EXPECT_EQ(r.rc, 0) << f << ":\n" << r.out << r.err;
    EXPECT_NE(r.out.find("ok: "), std::string::npos) << f << ":\n" << r.out << r.err;
  }
}

TEST(ConfigPaths, HomeAndDataDirAreExpanded) {
  EnvGuard env;
  env.set("GRPO_DATA_DIR", "/data/x");
  env.set("HOME", "/home/u");
  EXPECT_EQ(fs::expand_path("~/a/b.gguf"), "/home/u/a/b.gguf");
  EXPECT_EQ(fs::expand_path("$GRPO_DATA_DIR/smollm2/m.gguf"), "/data/x/smollm2/m.gguf");
  EXPECT_EQ(fs::expand_path("${GRPO_DATA_DIR}/m.gguf"), "/data/x/m.gguf");
  EXPECT_EQ(fs::expand_path("runs/~/x"), "runs/~/x");
  EXPECT_EQ(fs::expand_path("$GRPO_DATA_DIRx/m"), "$GRPO_DATA_DIRx/m");
  EXPECT_EQ(fs::expand_path(""), "");
  auto cfg = load_config_string("model: {path: $GRPO_DATA_DIR/m.gguf}\ntask: {source: ~/g.jsonl}\n", "t.yaml", {}).config;
  EXPECT_EQ(cfg.model.path, "/data/x/m.gguf");
  EXPECT_EQ(cfg.task.source, "/home/u/g.jsonl");
  env.set("GRPO_DATA_DIR", nullptr);
  env.set("XDG_CACHE_HOME", "/xdg");
  env.set("GRPO_CACHE_DIR", nullptr);
  EXPECT_EQ(fs::data_dir(), "/xdg/grpo/data");  // scripts/lib/env.sh's order
  env.set("XDG_CACHE_HOME", nullptr);
  EXPECT_EQ(fs::data_dir(), "/home/u/.cache/grpo/data");
}

}  // namespace
}  // namespace grpo::config
