// `grpo reward CONFIG --input FILE.jsonl [--out FILE.jsonl]`: scores completions offline with the
// config's reward functions, so a reward setup can be debugged before a run.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/data/escape.h"
#include "grpo/reward/reward_set.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::cli {
namespace {

struct RewardArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string input;
  std::string out;
  size_t batch_size = 256;
};

// Text of a prompt or completion field: a string, or chat messages [{role, content}] (the prompt
// joins every content, the completion takes the last message's).
std::string message_text(const nlohmann::json& v, bool last_only, const std::string& where, const char* field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      const auto& m = v[i];
      if (!m.is_object() || !m.contains("content") || !m["content"].is_string())
        throw InputError(str(where, ": field \"", field, "\" is a list, so each element must be a message {role, content} "
                                    "with a string content; element ", i, " is not"));
      if (last_only) out = m["content"].get<std::string>();
      else out += (out.empty() ? "" : "\n") + m["content"].get<std::string>();
    }
    return out;
  }
  throw InputError(str(where, ": field \"", field, "\" must be a string or a list of messages, got ", v.type_name()));
}

reward::RewardInput parse_row(const std::string& line, const std::string& where) {
  nlohmann::json row;
  try {
    row = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(str(where, ": invalid JSON: ", data::escape_for_terminal(e.what())));
  }
  if (!row.is_object()) throw InputError(str(where, ": each line must be a JSON object, got ", row.type_name()));
  if (!row.contains("completion"))
    throw InputError(str(where, ": missing field \"completion\" (the text to score)"));
  reward::RewardInput in;
  in.completion = message_text(row["completion"], true, where, "completion");
  if (row.contains("prompt")) in.prompt = message_text(row["prompt"], false, where, "prompt");
  if (row.contains("completion_tokens")) {
    const auto& t = row["completion_tokens"];
    if (!t.is_number_integer() || t.get<int64_t>() < 0)
      throw InputError(str(where, ": field \"completion_tokens\" must be a non-negative integer, got ", t.dump()));
    in.completion_tokens = t.get<int64_t>();
  }
  in.reference = std::move(row);
  return in;
}

// A float32 reward as a JSON number with float precision (0.95f prints as 0.95, not 0.949999988).
double json_value(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(v));
  return std::strtod(buf, nullptr);
}

struct Summary {
  double sum = 0, min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  size_t count = 0, problems = 0;
  void add(double v) {
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
    ++count;
  }
};

void run(const RewardArgs& a) {
  auto loaded = config::load_config(a.config, a.overrides);
  auto set = reward::RewardSet::from_config(loaded.config.reward);

  std::ifstream in(a.input);
  if (!in) throw InputError(str(a.input, ": cannot open the input file"));
  std::vector<reward::RewardInput> rows;
  std::vector<size_t> row_line;  // input line of each row (blank lines are skipped)
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    rows.push_back(parse_row(line, str(a.input, ":", lineno)));
    row_line.push_back(lineno);
  }
  if (in.bad()) throw InputError(str(a.input, ": read error"));
  // As grpo generate refuses an empty prompts file: 0 rows scored is a mistake (wrong file), not a result.
  GRPO_REQUIRE(!rows.empty(), a.input, ": no rows to score (the file is empty or has only blank lines)");

  const auto& names = set.names();
  std::vector<Summary> per(names.size());
  Summary total;
  size_t masked = 0, problem_count = 0;
  std::vector<std::string> first_problems;  // shown after the table: a problem is usually a setup mistake
  std::ostringstream out;
  for (size_t start = 0; start < rows.size(); start += a.batch_size) {
    size_t end = std::min(rows.size(), start + a.batch_size);
    std::vector<reward::RewardInput> batch(std::make_move_iterator(rows.begin() + start),
                                           std::make_move_iterator(rows.begin() + end));
    auto res = set.score(batch);
    std::vector<nlohmann::json> problems(batch.size(), nlohmann::json::array());
    for (const auto& p : res.problems) {
      problems[p.row].push_back({{"function", p.function}, {"message", p.message}});
      if (++problem_count <= 5) first_problems.push_back(str(a.input, ":", row_line[start + p.row], ": ", p.function, ": ", p.message));
      for (size_t f = 0; f < names.size(); ++f)
        if (names[f] == p.function) ++per[f].problems;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      nlohmann::json row = std::move(batch[i].reference);
      nlohmann::json values = nlohmann::json::object();
      for (size_t f = 0; f < names.size(); ++f) {
        values[names[f]] = json_value(res.per_function[f][i]);
        per[f].add(res.per_function[f][i]);
      }
      row["rewards"] = std::move(values);
      row["reward"] = json_value(res.total[i]);
      total.add(res.total[i]);
      if (!problems[i].empty()) row["reward_problems"] = std::move(problems[i]);
      if (res.masked[i]) {
        row["reward_masked"] = true;
        ++masked;
      }
      out << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  }
  if (!a.out.empty()) fs::atomic_write(a.out, out.str());

  auto line_of = [](const std::string& name, const std::string& weight, const Summary& s) {
    std::ostringstream os;
    os << std::left << std::setw(24) << name << std::right << std::setw(8) << weight << std::fixed
       << std::setprecision(4);
    if (s.count) os << std::setw(10) << s.sum / s.count << std::setw(10) << s.min << std::setw(10) << s.max;
    else os << std::setw(10) << "-" << std::setw(10) << "-" << std::setw(10) << "-";
    os << std::setw(8) << s.count << std::setw(10) << s.problems << "\n";
    return os.str();
  };
  std::cout << std::left << std::setw(24) << "function" << std::right << std::setw(8) << "weight" << std::setw(10)
            << "mean" << std::setw(10) << "min" << std::setw(10) << "max" << std::setw(8) << "count" << std::setw(10)
            << "problems" << "\n";
  for (size_t f = 0; f < names.size(); ++f) {
    std::ostringstream w;
    w << std::setprecision(4) << loaded.config.reward.functions[f].weight;
    std::cout << line_of(names[f], w.str(), per[f]);
  }
  std::cout << line_of("total", "", total);
  if (masked) std::cout << masked << " row(s) masked (their reward is not meaningful)\n";
  for (const auto& p : first_problems) std::cout << "problem: " << p << "\n";
  if (problem_count > first_problems.size())
    std::cout << "... " << problem_count - first_problems.size() << " more problem(s)"
              << (a.out.empty() ? " (--out writes each row's reward_problems)" : str(" (see reward_problems in ", a.out, ")")) << "\n";
  if (!a.out.empty()) std::cout << "wrote " << rows.size() << " row(s) to " << a.out << "\n";
}

}  // namespace

void register_reward_commands(CLI::App& app) {
  static RewardArgs args;
  auto* sub = app.add_subcommand("reward", "Score completions offline with the config's reward functions");
  sub->add_option("config", args.config, "YAML config file (its reward section is used)")->required();
  sub->add_option("overrides", args.overrides, "key.path=value overrides, applied after the file");
  sub->add_option("--input", args.input,
                  "JSONL file, one row per line: completion (string or chat messages), optional prompt and "
                  "completion_tokens, and the reference fields the functions read (answer, nums, target, tests...)")
      ->required();
  sub->add_option("--out", args.out, "Write each row with its per-function rewards and total to this JSONL file");
  sub->add_option("--batch-size", args.batch_size, "Rows scored per call")->check(CLI::PositiveNumber);
  sub->callback([] { run(args); });
}

}  // namespace grpo::cli
