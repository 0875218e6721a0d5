#include "grpo/util/cpu_features.h"

#include <fstream>
#include <sstream>

namespace grpo::util {

namespace {

// Whether the whitespace-separated feature list `line` (after its ':') names `flag` exactly
// (avx512_bf16 must not match avx512_bf16_foo, nor bf16 match avx512_bf16).
bool has_flag(std::string_view line, std::string_view flag) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  std::istringstream words{std::string(line.substr(colon + 1))};
  for (std::string w; words >> w;)
    if (w == flag) return true;
  return false;
}

}  // namespace

const char* bf16_path_name(Bf16Path p) {
  switch (p) {
    case Bf16Path::AMX: return "amx_bf16";
    case Bf16Path::AVX512_BF16: return "avx512_bf16";
    case Bf16Path::ARM_BF16: return "arm_bf16";
    case Bf16Path::EMULATED: return "emulated";
  }
  return "emulated";
}

Bf16Path bf16_path_from_cpuinfo(std::string_view cpuinfo) {
  // Every core repeats its flags; the first flags/Features line speaks for the machine (a
  // hybrid CPU lists the same ISA on all cores).
  size_t pos = 0;
  while (pos < cpuinfo.size()) {
    size_t end = cpuinfo.find('\n', pos);
    if (end == std::string_view::npos) end = cpuinfo.size();
    const std::string_view line = cpuinfo.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("flags", 0) == 0) {
      if (has_flag(line, "amx_bf16") && has_flag(line, "amx_tile")) return Bf16Path::AMX;
      if (has_flag(line, "avx512_bf16")) return Bf16Path::AVX512_BF16;
      return Bf16Path::EMULATED;
    }
    if (line.rfind("Features", 0) == 0) return has_flag(line, "bf16") ? Bf16Path::ARM_BF16 : Bf16Path::EMULATED;
  }
  return Bf16Path::EMULATED;
}

Bf16Path bf16_path() {
  static const Bf16Path path = [] {
    std::ifstream in("/proc/cpuinfo");
    if (!in) return Bf16Path::EMULATED;
    std::ostringstream s;
    s << in.rdbuf();
    return bf16_path_from_cpuinfo(s.str());
  }();
  return path;
}

}  // namespace grpo::util
