// docs/config.md is the output of `grpo config docs`, committed so the reference reads on GitHub.
// This test fails as soon as a config key, default, range or description changes without the
// file being regenerated (scripts/gen_config_docs.sh), so the reference cannot drift.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "common/subprocess.h"

namespace {

TEST(ConfigDocs, CommittedReferenceMatchesTheBinary) {
  const std::string path = std::string(GRPO_SOURCE_DIR) + "/docs/config.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " is missing: run scripts/gen_config_docs.sh";
  std::string committed((std::istreambuf_iterator<char>(in)), {});
  auto r = grpo::testing::run_grpo("config docs");
  ASSERT_EQ(r.rc, 0) << r.err;
  // Sanity: the binary documents real keys (a broken `config docs` must not match an empty file).
  ASSERT_NE(r.out.find("| `grpo.beta` |"), std::string::npos) << r.out.substr(0, 500);
  if (committed == r.out) return;
  // Name the first differing line so the failure says what changed.
  std::istringstream a(committed), b(r.out);
  std::string la, lb;
  int line = 0;
  while (true) {
    ++line;
    bool ha = static_cast<bool>(std::getline(a, la)), hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) break;
    if (ha != hb || la != lb) {
      ADD_FAILURE() << path << " is out of date (regenerate: scripts/gen_config_docs.sh). First difference at line "
                    << line << ":\n  docs/config.md: " << (ha ? la : "<end of file>")
                    << "\n  grpo config docs: " << (hb ? lb : "<end of output>");
      return;
    }
  }
  ADD_FAILURE() << path << " differs from `grpo config docs` (line endings?): run scripts/gen_config_docs.sh";
}

}  // namespace
