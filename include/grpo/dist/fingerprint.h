#pragma once
// What every rank must agree on before training together: the grpo version, the git revision the
// binary was built from (baked in at build time) and the resolved config. Ranks that disagree
// would silently train different things, so the run refuses to start (Distributed::
// check_same_fingerprint).
#include <string>
#include <vector>

namespace grpo::dist {

/// Version of this build (CMake's project version) and `git describe --always --dirty` of the
/// source tree at build time ("unknown" outside a git checkout).
struct BuildInfo {
  std::string version;
  std::string git;
};
BuildInfo build_info();

/// 64-bit FNV-1a of `text` as 16 hex digits. A mismatch detector, not a cryptographic hash.
std::string fnv1a64_hex(const std::string& text);

/// "grpo=<version> git=<describe> config=<fnv1a64 of the resolved config YAML>".
std::string run_fingerprint(const std::string& resolved_config_yaml);

/// Compares every rank's fingerprint with rank 0's. Throws grpo::InputError naming the first
/// differing rank and the differing fields with both values, e.g. "rank 1 differs from rank 0
/// in config (rank 0: ..., rank 1: ...)". Does nothing when all are equal.
void check_fingerprints(const std::vector<std::string>& per_rank);

}  // namespace grpo::dist
