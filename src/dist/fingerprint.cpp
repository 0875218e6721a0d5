#include "grpo/dist/fingerprint.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>

#include "grpo/util/error.h"
// GRPO_DIST_VERSION and GRPO_DIST_GIT_DESCRIBE, regenerated at every build (src/dist/build_info.cmake).
#include "grpo_dist_build_info.h"

namespace grpo::dist {
namespace {

std::map<std::string, std::string> fields(const std::string& fp) {
  std::map<std::string, std::string> out;
  std::istringstream is(fp);
  std::string tok;
  while (is >> tok) {
    auto eq = tok.find('=');
    out[tok.substr(0, eq)] = eq == std::string::npos ? "" : tok.substr(eq + 1);
  }
  return out;
}

const char* describe_field(const std::string& k) {
  if (k == "grpo") return "grpo version";
  if (k == "git") return "git revision of the build";
  if (k == "config") return "resolved config (hash of its YAML)";
  return "field";
}

}  // namespace

BuildInfo build_info() { return {GRPO_DIST_VERSION, GRPO_DIST_GIT_DESCRIBE}; }

std::string fnv1a64_hex(const std::string& text) {
  uint64_t h = 14695981039346656037ull;  // FNV offset basis
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;  // FNV prime
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string run_fingerprint(const std::string& resolved_config_yaml) {
  auto b = build_info();
  return str("grpo=", b.version, " git=", b.git, " config=", fnv1a64_hex(resolved_config_yaml));
}

void check_fingerprints(const std::vector<std::string>& per_rank) {
  if (per_rank.empty()) return;
  const auto ref = fields(per_rank[0]);
  for (size_t r = 1; r < per_rank.size(); ++r) {
    if (per_rank[r] == per_rank[0]) continue;
    auto other = fields(per_rank[r]);
    std::string diff;
    std::map<std::string, std::string> keys;
    for (const auto& [k, v] : ref) keys[k];
    for (const auto& [k, v] : other) keys[k];
    for (const auto& [k, unused] : keys) {
      auto a = ref.count(k) ? ref.at(k) : "<missing>";
      auto b = other.count(k) ? other.at(k) : "<missing>";
      if (a == b) continue;
      diff += str(diff.empty() ? "" : "; ", describe_field(k), " (", k, "): rank 0 has '", a, "', rank ", r, " has '",
                  b, "'");
    }
    throw InputError(str("ranks disagree before training: rank ", r, " differs from rank 0 in ", diff,
                         ". Start every rank with the same grpo binary and the same config and overrides"));
  }
}

}  // namespace grpo::dist
