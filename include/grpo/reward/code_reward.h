#pragma once
// `code`: runs the program in the completion's last fenced code block against the row's tests in
// the sandbox (include/grpo/reward/sandbox.h) and rewards the fraction of tests passed (or 1 only
// when all pass). Tests (row field `tests_field`) are either
//   - a list of assert statements (Python only; HumanEval/MBPP style), run through the two-process
//     harness of sandbox_harness.h so that the program cannot fake a pass, or
//   - a list of {"input": ..., "output": ...} pairs: the program reads `input` on stdin and passes
//     when its stdout equals `output` up to trailing whitespace on each line and trailing blank
//     lines (Python or C++; a C++ program is compiled once per row).
// A row on which the sandbox itself failed (SANDBOX_ERROR) is masked, never silently rewarded 0.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"
#include "grpo/reward/sandbox.h"

namespace grpo::reward {

/// The content of the last fenced (```) code block of `completion` whose info string names
/// `language` (python: python, py, python3; cpp: cpp, c++, cc, cxx) or is empty. An unclosed last
/// fence counts up to the end of the text. nullopt when there is none.
std::optional<std::string> extract_code_block(std::string_view completion, config::CodeLanguage language);

/// The tests of one row, parsed from the JSON value of the tests field.
struct CodeTests {
  std::vector<std::string> asserts;                         // assert-style tests
  std::vector<std::pair<std::string, std::string>> io;      // (stdin, expected stdout) pairs
  size_t size() const { return asserts.size() + io.size(); }
};

/// Parses a tests value: a non-empty list of strings, or of {input, output} objects (strings). A
/// JSON string holding such a list is accepted too (datasets often store it encoded). Throws
/// grpo::InputError describing what was found otherwise.
CodeTests parse_code_tests(const nlohmann::json& value);

/// True when `got` equals `expected` up to trailing whitespace on each line and trailing newlines.
bool outputs_match(std::string_view got, std::string_view expected);

/// The detailed outcome of one row.
struct CodeRowResult {
  float reward = 0;         // fraction passed or all-or-nothing; 0 when masked
  bool masked = false;      // the sandbox failed: leave the row out rather than reward 0
  int passed = 0, total = 0;
  bool ran = false;         // a program was extracted and sent to the sandbox
  SandboxStatus status = SandboxStatus::OK;  // worst status over the row's runs (for logs)
  std::string problem;      // "" when scored normally
};

/// The `code` reward function. Owns a Sandbox built from the config's reward.sandbox section;
/// a batch runs on sandbox.num_workers workers at once.
class CodeReward : public RewardFunction {
 public:
  /// Throws grpo::InputError when the sandbox cannot be set up or the interpreter/compiler for
  /// `params.language` is not found on the sandbox PATH.
  CodeReward(config::CodeParams params, const config::SandboxConfig& sandbox);
  ~CodeReward() override;
  std::string name() const override { return "code"; }
  RewardScores score_batch(const std::vector<RewardInput>& batch) const override;
  /// As score_batch, with the per-row details.
  std::vector<CodeRowResult> score_detailed(const std::vector<RewardInput>& batch) const;
  const Sandbox& sandbox() const { return *sandbox_; }

 private:
  config::CodeParams p_;
  std::unique_ptr<Sandbox> sandbox_;
};

/// Registers the `code` kind with the reward registry (called by registry.cpp; see registry.h).
void register_code_reward();

}  // namespace grpo::reward
