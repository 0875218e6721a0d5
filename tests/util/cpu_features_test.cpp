// util::bf16_path_from_cpuinfo on /proc/cpuinfo excerpts of real machines (flag lists as the Linux
// kernel prints them: Sapphire Rapids, Zen 4, Skylake-SP, Graviton 3).
#include <gtest/gtest.h>

#include "grpo/util/cpu_features.h"

namespace grpo::util {
namespace {

TEST(CpuFeatures, AmxBeatsAvx512Bf16) {
  const char* spr =
      "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
      "flags\t\t: fpu vme avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8\n\nprocessor\t: 1\n"
      "flags\t\t: fpu vme avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8\n";
  EXPECT_EQ(bf16_path_from_cpuinfo(spr), Bf16Path::AMX);
  EXPECT_STREQ(bf16_path_name(Bf16Path::AMX), "amx_bf16");
}

TEST(CpuFeatures, Avx512Bf16WithoutAmx) {
  const char* zen4 = "model name\t: AMD EPYC 9454\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n";
  EXPECT_EQ(bf16_path_from_cpuinfo(zen4), Bf16Path::AVX512_BF16);
  // amx_bf16 without amx_tile (a kernel that has not enabled the tile state): no AMX.
  EXPECT_EQ(bf16_path_from_cpuinfo("flags\t: avx512f avx512_bf16 amx_bf16\n"), Bf16Path::AVX512_BF16);
}

TEST(CpuFeatures, EmulatedWithoutBf16Instructions) {
  const char* skx = "model name\t: Intel(R) Xeon(R) Gold 6148\nflags\t\t: fpu avx2 avx512f avx512dq avx512bw avx512vl\n";
  EXPECT_EQ(bf16_path_from_cpuinfo(skx), Bf16Path::EMULATED);
  EXPECT_TRUE(bf16_slower_than_float32(Bf16Path::EMULATED));
  EXPECT_FALSE(bf16_slower_than_float32(Bf16Path::AVX512_BF16));
  // A flag must match whole: avx512_bf16x is not avx512_bf16.
  EXPECT_EQ(bf16_path_from_cpuinfo("flags\t: avx512f avx512_bf16x\n"), Bf16Path::EMULATED);
  EXPECT_EQ(bf16_path_from_cpuinfo(""), Bf16Path::EMULATED);
}

TEST(CpuFeatures, Aarch64FeaturesLine) {
  EXPECT_EQ(bf16_path_from_cpuinfo("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"), Bf16Path::ARM_BF16);
  EXPECT_EQ(bf16_path_from_cpuinfo("Features\t: fp asimd svebf16\n"), Bf16Path::EMULATED);
}

}  // namespace
}  // namespace grpo::util
