#include "grpo/reward/code_reward.h"

#include <algorithm>

#include "grpo/reward/registry.h"
#include "grpo/reward/sandbox_harness.h"
#include "grpo/reward/sandbox_pool.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool tag_matches(const std::string& info, config::CodeLanguage lang) {
  // The info string's first word, e.g. "python title=x" -> "python".
  std::string w = lower(info.substr(0, info.find_first_of(" \t{")));
  if (w.empty()) return true;
  if (lang == config::CodeLanguage::PYTHON) return w == "python" || w == "py" || w == "python3";
  return w == "cpp" || w == "c++" || w == "cc" || w == "cxx";
}

std::string trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(a, b - a + 1));
}

std::string normalize_output(std::string_view s) {
  std::string out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    std::string_view line = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    size_t end = line.find_last_not_of(" \t\r");
    out.append(line.substr(0, end == std::string_view::npos ? 0 : end + 1));
    out.push_back('\n');
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int severity(SandboxStatus s) {
  switch (s) {
    case SandboxStatus::OK: return 0;
    case SandboxStatus::FAILED: return 1;
    case SandboxStatus::KILLED_BY_SIGNAL: return 2;
    case SandboxStatus::OUTPUT_LIMIT: return 3;
    case SandboxStatus::MEMORY_LIMIT: return 4;
    case SandboxStatus::TIMEOUT: return 5;
    case SandboxStatus::SANDBOX_ERROR: return 6;
  }
  return 0;
}

}  // namespace

std::optional<std::string> extract_code_block(std::string_view text, config::CodeLanguage language) {
  std::optional<std::string> last;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("```", pos);
    if (open == std::string_view::npos) break;
    size_t eol = text.find('\n', open);
    if (eol == std::string_view::npos) break;  // a fence with no body
    std::string info = trim(text.substr(open + 3, eol - open - 3));
    size_t close = text.find("```", eol + 1);
    std::string_view body =
        text.substr(eol + 1, close == std::string_view::npos ? std::string_view::npos : close - eol - 1);
    if (tag_matches(info, language)) last = std::string(body);
    if (close == std::string_view::npos) break;
    pos = close + 3;
  }
  return last;
}

CodeTests parse_code_tests(const nlohmann::json& value) {
  nlohmann::json v = value;
  if (v.is_string()) {
    try {
      v = nlohmann::json::parse(v.get<std::string>());
    } catch (const std::exception&) {
      throw InputError(str("tests is a string that is not a JSON list: ", value.get<std::string>().substr(0, 80)));
    }
  }
  GRPO_REQUIRE(v.is_array() && !v.empty(), "tests must be a non-empty list of assert strings or {input, output} objects, got ",
               v.dump().substr(0, 80));
  CodeTests t;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& e = v[i];
    if (e.is_string()) {
      t.asserts.push_back(e.get<std::string>());
    } else if (e.is_object() && e.contains("input") && e.contains("output") && e["input"].is_string() &&
               e["output"].is_string()) {
      t.io.emplace_back(e["input"].get<std::string>(), e["output"].get<std::string>());
    } else {
      throw InputError(str("tests[", i, "] must be an assert string or an object with string 'input' and 'output', got ",
                           e.dump().substr(0, 80)));
    }
  }
  GRPO_REQUIRE(t.asserts.empty() || t.io.empty(), "tests mix assert strings and {input, output} objects");
  return t;
}

bool outputs_match(std::string_view got, std::string_view expected) {
  return normalize_output(got) == normalize_output(expected);
}

CodeReward::CodeReward(config::CodeParams params, const config::SandboxConfig& sandbox)
    : p_(std::move(params)), sandbox_(std::make_unique<Sandbox>(sandbox)) {
  // Fail at start-up, not at every row, when the language's tool is missing.
  SandboxRequest probe;
  probe.language = p_.language;
  probe.source = p_.language == config::CodeLanguage::PYTHON ? "pass\n" : "int main() { return 0; }\n";
  SandboxResult r = sandbox_->run(probe);
  GRPO_REQUIRE(r.status != SandboxStatus::SANDBOX_ERROR, "reward code: the sandbox cannot run ",
               config::enum_name(p_.language), " programs: ", r.error);
}

CodeReward::~CodeReward() = default;

std::vector<CodeRowResult> CodeReward::score_detailed(const std::vector<RewardInput>& batch) const {
  std::vector<CodeRowResult> out(batch.size());
  std::vector<SandboxJob> jobs;
  std::vector<int> job_of(batch.size(), -1);
  std::vector<CodeTests> tests(batch.size());
  std::vector<std::string> nonces(batch.size());
  const auto& cfg = sandbox_->config();
  for (size_t i = 0; i < batch.size(); ++i) {
    const RewardInput& row = batch[i];
    try {
      GRPO_REQUIRE(row.reference.is_object() && row.reference.contains(p_.tests_field), "row has no '", p_.tests_field,
                   "' field");
      tests[i] = parse_code_tests(row.reference[p_.tests_field]);
      GRPO_REQUIRE(tests[i].asserts.empty() || p_.language == config::CodeLanguage::PYTHON,
                   "assert-style tests need language python (use {input, output} tests for cpp)");
    } catch (const std::exception& e) {
      out[i].problem = str("bad tests: ", e.what());
      continue;
    }
    out[i].total = static_cast<int>(tests[i].size());
    auto code = extract_code_block(row.completion, p_.language);
    if (!code) continue;  // no program: reward 0, a normal outcome
    SandboxJob job;
    if (!tests[i].asserts.empty()) {
      nonces[i] = make_nonce();
      job.request.language = config::CodeLanguage::PYTHON;
      job.request.source = python_assert_harness();
      job.request.files = {{"program.py", *code}, {"tests.json", nlohmann::json(tests[i].asserts).dump()}};
      // The harness stops calling the program a little before the wall limit so it can still
      // report the tests that passed.
      job.request.args = {str(std::max(0.2, cfg.wall_time_s * 0.85 - 0.3))};
      job.stdins = {nonces[i] + "\n"};
    } else {
      job.request.language = p_.language;
      job.request.source = *code;
      job.stdins.clear();
      for (const auto& [in, expected] : tests[i].io) job.stdins.push_back(in);
    }
    job_of[i] = static_cast<int>(jobs.size());
    jobs.push_back(std::move(job));
  }
  auto results = SandboxPool(*sandbox_).run_batch(jobs);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (job_of[i] < 0) continue;
    const auto& rs = results[static_cast<size_t>(job_of[i])];
    CodeRowResult& row = out[i];
    row.ran = true;
    for (const auto& r : rs) {
      if (severity(r.status) > severity(row.status)) row.status = r.status;
      if (r.status == SandboxStatus::SANDBOX_ERROR) {
        row.masked = true;
        row.problem = str("sandbox error: ", r.error);
      }
    }
    if (row.masked) continue;
    if (!tests[i].asserts.empty()) {
      auto v = parse_harness_verdict(rs.at(0).stdout_data, nonces[i], row.total);
      if (!v && rs.at(0).stderr_data.find("GRPO-HARNESS-ERROR") != std::string::npos) {
        row.masked = true;
        row.problem = "sandbox error: the test harness could not protect itself";
        continue;
      }
      row.passed = v ? v->passed : 0;
    } else {
      for (size_t k = 0; k < rs.size(); ++k)
        if (rs[k].status == SandboxStatus::OK && outputs_match(rs[k].stdout_data, tests[i].io[k].second)) ++row.passed;
    }
  }
  for (auto& row : out) {
    if (row.masked || row.total == 0) {
      row.reward = 0;
      continue;
    }
    row.reward = p_.scoring == config::CodeScoring::FRACTION ? float(row.passed) / float(row.total)
                                                             : (row.passed == row.total ? 1.0f : 0.0f);
  }
  return out;
}

RewardScores CodeReward::score_batch(const std::vector<RewardInput>& batch) const {
  RewardScores s(batch.size());
  auto d = score_detailed(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    s.values[i] = d[i].reward;
    s.masked[i] = d[i].masked ? 1 : 0;
    s.problems[i] = d[i].problem;
    if (d[i].ran) {
      s.counters["programs_run"] += 1;
      s.counters[str("status/", status_name(d[i].status))] += 1;
      if (d[i].masked) s.counters["sandbox_errors"] += 1;
    }
  }
  return s;
}

void register_code_reward() {
  register_reward_factory(config::RewardKind::CODE, [](const config::RewardFunctionConfig& e, const config::RewardConfig& all) {
    return std::make_unique<CodeReward>(e.code, all.sandbox);
  });
}

}  // namespace grpo::reward
