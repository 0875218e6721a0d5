// The GRPO reference model (grpo.beta > 0 or grpo.log_kl) runs the policy's kernels: with
// kernels.fused_ops on, the reference forwards dispatch to the grpo:: ops too. Two one-step runs
// of the CI smoke config differ only in grpo.log_kl (which adds the reference forwards and changes
// nothing else); the difference of their grpo:: dispatcher counts (a global RecordFunction
// callback, not a flag the code sets) is what the reference ran. Also: the run directory holds the
// kernels line.
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>

#include "common/run_files.h"
#include "grpo/config/config.h"
#include "grpo/train/pipeline.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;

// grpo:: dispatcher calls by name, from every thread (rollout and autograd included), while alive.
class GrpoOpCounter {
 public:
  GrpoOpCounter() {
    counts().clear();
    handle_ = at::addGlobalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          const std::string name = fn.name();
          if (name.rfind("grpo::", 0) == 0) {
            std::lock_guard<std::mutex> lock(mutex());
            ++counts()[name];
          }
          return nullptr;
        })
            .needsInputs(false)
            .scopes({at::RecordScope::FUNCTION}));
  }
  ~GrpoOpCounter() { at::removeCallback(handle_); }
  static std::map<std::string, int> snapshot() {
    std::lock_guard<std::mutex> lock(mutex());
    return counts();
  }

 private:
  static std::map<std::string, int>& counts() {
    static std::map<std::string, int> c;
    return c;
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  at::CallbackHandle handle_;
};

constexpr int kMicroBatches = 2;  // trainer.gradient_accumulation_steps: one reference forward each
constexpr int kLayers = 2;        // ci-smoke's model.num_hidden_layers

std::map<std::string, int> run_one_step(const sfs::path& dir, const sfs::path& tokenizer, bool log_kl) {
  auto cfg = config::load_config(std::string(GRPO_SOURCE_DIR) + "/configs/ci-smoke.yaml",
                                 {"stages=[]", "trainer.max_steps=1", "kernels.fused_ops=true", "grpo.beta=0",
                                  std::string("grpo.log_kl=") + (log_kl ? "true" : "false"),
                                  "trainer.gradient_accumulation_steps=" + std::to_string(kMicroBatches),
                                  "rollout.max_completion_length=8", "reward.functions=[{name: format, weight: 1.0}]",
                                  "task.num_eval=0", "logging.report_to=[jsonl]",
                                  "trainer.output_dir=" + dir.string(), "tokenizer.path=" + tokenizer.string()})
                 .config;
  GrpoOpCounter counter;
  run_pipeline(cfg, PipelineOptions{});
  return GrpoOpCounter::snapshot();
}

TEST(ReferenceModel, RunsThePolicysFusedKernels) {
  const auto dir = grpo::testing::scratch_dir("grpo_ref_kernels_", "runs");
  const auto tok = dir / "tokenizer.model";  // trained by the first run, reused by the second
  const auto without_ref = run_one_step(dir / "no_ref", tok, false);
  const auto with_ref = run_one_step(dir / "ref", tok, true);
  auto diff = [&](const std::string& op) {
    auto get = [&](const std::map<std::string, int>& m) { return m.count(op) ? m.at(op) : 0; };
    return get(with_ref) - get(without_ref);
  };
  ASSERT_GT(without_ref.count("grpo::add_rms_norm"), 0u) << "the policy itself must run the fused ops";
  // One reference forward per micro-batch; each runs, per layer, input_layernorm alone, the
  // post-attention residual add + norm fused, and RoPE, plus the final norm.
  EXPECT_EQ(diff("grpo::rms_norm"), kMicroBatches * (kLayers + 1));
  EXPECT_EQ(diff("grpo::add_rms_norm"), kMicroBatches * kLayers);
  EXPECT_EQ(diff("grpo::rope"), kMicroBatches * kLayers);

  // The kernels line is in the run directory, naming the implementations.
  std::ifstream in(dir / "ref" / "kernels.txt");
  std::string line;
  ASSERT_TRUE(std::getline(in, line)) << "no kernels.txt in " << (dir / "ref");
  EXPECT_EQ(line.rfind("kernels: rms_norm=grpo::add_rms_norm+rms_norm(cpu) swiglu=grpo::swiglu(cpu) rope=grpo::rope(cpu)", 0), 0u)
      << line;
  sfs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::train
