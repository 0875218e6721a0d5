// kernels.fp8 at config time: the config knows the device and the build, not the GPU. model.device
// cpu is refused (bad_config_test.cpp); on cuda the answer depends on whether this build has the
// CUDA kernels (GRPO_BUILD_HAS_CUDA_KERNELS, set by CMake with the kernels): accepted with them
// (a pre-Hopper GPU is refused when the model is applied, model/apply_kernels.cpp), refused with
// one error naming the key without them.
#include <gtest/gtest.h>

#include "grpo/config/config.h"

namespace grpo::config {
namespace {

TEST(Fp8Config, CudaDeviceDependsOnTheBuild) {
  const char* yaml = "model:\n  device: cuda\nkernels:\n  fp8: true\n";
#ifdef GRPO_BUILD_HAS_CUDA_KERNELS
  const LoadedConfig c = load_config_string(yaml, "test.yaml", {});
  EXPECT_TRUE(c.config.kernels.fp8);
#else
  try {
    load_config_string(yaml, "test.yaml", {});
    FAIL() << "kernels.fp8 in a build without CUDA kernels must be refused";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key_path(), "kernels.fp8") << e.what();
    EXPECT_EQ(e.where().line, 4) << e.what();
    EXPECT_NE(std::string(e.what()).find("this build has no CUDA kernels"), std::string::npos) << e.what();
  }
#endif
}

TEST(Fp8Config, CpuDeviceIsRefusedInEveryBuild) {
  try {
    load_config_string("model:\n  device: cpu\n", "test.yaml", {"kernels.fp8=true"});
    FAIL() << "kernels.fp8 on cpu must be refused";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key_path(), "kernels.fp8") << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find("FP8 linears need a CUDA sm_90 GPU, but model.device is cpu"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

}  // namespace
}  // namespace grpo::config
