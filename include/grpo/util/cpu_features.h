#pragma once
// Which bf16 arithmetic this CPU has, for trainer.bf16 on the CPU. oneDNN (inside LibTorch) runs a
// bf16 matmul on AMX tiles (amx_bf16, Sapphire Rapids and later), on AVX512-BF16 dot products
// (vdpbf16ps: Cooper Lake, Zen 4), or, without either, emulated by converting to float32: still
// correct, but slower than a plain float32 product (the conversions are extra work).
#include <string>
#include <string_view>

namespace grpo::util {

enum class Bf16Path { AMX, AVX512_BF16, ARM_BF16, EMULATED };

/// "amx_bf16", "avx512_bf16", "arm_bf16" or "emulated".
const char* bf16_path_name(Bf16Path p);

/// From the text of /proc/cpuinfo: the best of amx_bf16 (with amx_tile), avx512_bf16 (x86
/// "flags" lines) or bf16 (aarch64 "Features" lines); EMULATED when none is listed or the text
/// has no flags line at all.
Bf16Path bf16_path_from_cpuinfo(std::string_view cpuinfo);

/// This machine's path (reads /proc/cpuinfo once; EMULATED where it cannot be read).
Bf16Path bf16_path();

/// True when a bf16 product on this path runs slower than in float32 (the emulated path).
inline bool bf16_slower_than_float32(Bf16Path p) { return p == Bf16Path::EMULATED; }

}  // namespace grpo::util
