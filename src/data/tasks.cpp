#include "grpo/data/tasks.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::data {

const char* const kR1Instruction =
    " Think step by step inside <think> </think> tags, then give the final answer inside <answer> </answer> tags.";

const char* const kCodeInstruction =
    "Complete the following Python function. Reply with the complete function (signature, body and any imports "
    "it needs) in one ```python code block.\n\n";

const char* const kR1ProgramInstruction =
    " Think step by step inside <think> </think> tags, then give the program in a ```python block inside <answer> "
    "</answer> tags.";

namespace {

// std::uniform_int_distribution is implementation-defined; this is the same on every platform.
int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % span;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return lo + static_cast<int64_t>(x % span);
}

int64_t pow10(int d) {
  int64_t p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

int64_t draw_operand(std::mt19937_64& rng, int min_digits, int max_digits) {
  int digits = static_cast<int>(uniform(rng, min_digits, max_digits));
  int64_t lo = digits == 1 ? 0 : pow10(digits - 1);
  return uniform(rng, lo, pow10(digits) - 1);
}

// Column addition, right to left: "7+5=12, write 2 carry 1. 4+3+1=8, write 8."
std::string addition_trace(int64_t a, int64_t b) {
  std::string out;
  int64_t carry = 0;
  int col = 0;
  while (a > 0 || b > 0 || col == 0) {
    int64_t da = a % 10, db = b % 10, s = da + db + carry;
    if (!out.empty()) out += " ";
    out += std::to_string(da) + "+" + std::to_string(db) + (carry ? "+" + std::to_string(carry) : "") + "=" +
           std::to_string(s) + ".";
    carry = s / 10;
    a /= 10;
    b /= 10;
    ++col;
  }
  if (carry) out += " carry " + std::to_string(carry) + ".";
  return out;
}

std::string multiplication_trace(int64_t a, int64_t b) {
  // Partial products of a with each digit of b, then their sum.
  std::string out;
  std::vector<int64_t> parts;
  int64_t place = 1;
  for (int64_t rest = b; rest > 0 || place == 1; rest /= 10, place *= 10) {
    int64_t p = a * (rest % 10) * place;
    parts.push_back(p);
    if (!out.empty()) out += " ";
    out += std::to_string(a) + "*" + std::to_string((rest % 10) * place) + "=" + std::to_string(p) + ".";
    if (rest < 10) break;
  }
  if (parts.size() > 1) {
    out += " Sum:";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "+" : " ") + std::to_string(parts[i]);
    out += "=" + std::to_string(std::accumulate(parts.begin(), parts.end(), int64_t{0})) + ".";
  }
  return out;
}

std::string subtraction_trace(int64_t a, int64_t b) {
  if (a >= b) return std::to_string(a) + "-" + std::to_string(b) + "=" + std::to_string(a - b) + ".";
  return std::to_string(b) + "-" + std::to_string(a) + "=" + std::to_string(b - a) + ", so the result is negative.";
}

// One python tool call and its result, as the rollout engine injects it with rollout.tools'
// default call syntax and wrapper (output_prefix "\n<output>\n", output_suffix "\n</output>\n").
std::string tool_call_trace(const std::string& expr, int64_t result) {
  return "```python\nprint(" + expr + ")\n```\n<output>\n" + std::to_string(result) + "\n</output>\n";
}

std::string r1_solution(const std::string& think, const std::string& answer) {
  return "<think>" + think + "</think>\n<answer>" + answer + "</answer>";
}

// Exact rationals for the countdown search: num/den with den > 0, reduced.
struct Frac {
  int64_t num, den;
};
Frac make_frac(int64_t n, int64_t d) {
  if (d < 0) n = -n, d = -d;
  int64_t g = std::gcd(n < 0 ? -n : n, d);
  if (g == 0) g = 1;
  return {n / g, d / g};
}

struct Item {
  Frac v;
  std::string expr;
  bool atom;
};

bool search(std::vector<Item>& items, int64_t target, std::string& out) {
  if (items.size() == 1) {
    if (items[0].v.den == 1 && items[0].v.num == target) {
      out = items[0].expr;
      return true;
    }
    return false;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    for (size_t j = 0; j < items.size(); ++j) {
      if (i == j) continue;
      Item a = items[i], b = items[j];
      std::vector<Item> rest;
      for (size_t k = 0; k < items.size(); ++k)
        if (k != i && k != j) rest.push_back(items[k]);
      auto wrap = [](const Item& x) { return x.atom ? x.expr : "(" + x.expr + ")"; };
      std::vector<Item> cands;
      if (i < j) {  // commutative ops once per pair
        cands.push_back({make_frac(a.v.num * b.v.den + b.v.num * a.v.den, a.v.den * b.v.den), a.expr + " + " + b.expr, false});
        cands.push_back({make_frac(a.v.num * b.v.num, a.v.den * b.v.den), wrap(a) + " * " + wrap(b), false});
      }
      cands.push_back({make_frac(a.v.num * b.v.den - b.v.num * a.v.den, a.v.den * b.v.den), a.expr + " - " + wrap(b), false});
      if (b.v.num != 0) cands.push_back({make_frac(a.v.num * b.v.den, a.v.den * b.v.num), wrap(a) + " / " + wrap(b), false});
      for (auto& c : cands) {
        // Keep magnitudes bounded so int64 products cannot overflow for the supported sizes.
        if (std::abs(c.v.num) > 1000000000LL || c.v.den > 1000000000LL) continue;
        rest.push_back(c);
        if (search(rest, target, out)) return true;
        rest.pop_back();
      }
    }
  }
  return false;
}

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

std::optional<std::string> solve_countdown(const std::vector<int64_t>& nums, int64_t target) {
  std::vector<Item> items;
  for (int64_t n : nums) items.push_back({make_frac(n, 1), std::to_string(n), true});
  std::string out;
  if (search(items, target, out)) return out;
  return std::nullopt;
}

std::vector<nlohmann::json> make_arithmetic(const config::ArithmeticTaskConfig& cfg, int64_t n, uint64_t seed) {
  GRPO_REQUIRE(cfg.min_digits <= cfg.max_digits, "task.arithmetic.min_digits (", cfg.min_digits,
               ") must be <= task.arithmetic.max_digits (", cfg.max_digits, ")");
  GRPO_REQUIRE(!cfg.operations.empty(), "task.arithmetic.operations must list at least one of +, -, *");
  for (const auto& op : cfg.operations)
    GRPO_REQUIRE(op == "+" || op == "-" || op == "*", "task.arithmetic.operations: unknown operation '", op,
                 "', expected +, - or *");
  GRPO_REQUIRE(cfg.tool_fraction == 0.0 || cfg.answer_format == config::ArithmeticAnswer::NUMBER,
               "task.arithmetic.tool_fraction needs answer_format: number");
  std::mt19937_64 rng(seed);
  std::mt19937_64 tool_rng(seed ^ 0x7001ca11ULL);  // its own stream: the problems do not depend on tool_fraction
  std::vector<nlohmann::json> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const std::string& op = cfg.operations[static_cast<size_t>(uniform(rng, 0, int64_t(cfg.operations.size()) - 1))];
    int64_t a = draw_operand(rng, cfg.min_digits, cfg.max_digits);
    int64_t b = draw_operand(rng, cfg.min_digits, cfg.max_digits);
    int64_t result;
    std::string trace;
    if (op == "+") {
      result = a + b;
      trace = addition_trace(a, b);
    } else if (op == "-") {
      result = a - b;
      trace = subtraction_trace(a, b);
    } else {
      result = a * b;
      trace = multiplication_trace(a, b);
    }
    std::string expr = std::to_string(a) + " " + op + " " + std::to_string(b);
    if (cfg.answer_format == config::ArithmeticAnswer::PYTHON) {
      // The program is checked by running it (code reward): its stdout must be the value.
      std::string question = "Write a Python program that prints the value of " + expr + ".";
      out.push_back({{"prompt", question + kR1ProgramInstruction},
                     {"question", question},
                     {"answer", std::to_string(result)},
                     {"tests", nlohmann::json::array({{{"input", ""}, {"output", std::to_string(result)}}})},
                     {"solution", r1_solution(trace, "\n```python\nprint(" + expr + ")\n```\n")}});
      continue;
    }
    if (cfg.tool_fraction > 0 && static_cast<double>(tool_rng() >> 11) * 0x1.0p-53 < cfg.tool_fraction)
      trace = tool_call_trace(expr, result);
    std::string question = "What is " + expr + "?";
    out.push_back({{"prompt", question + kR1Instruction},
                   {"question", question},
                   {"answer", std::to_string(result)},
                   {"solution", r1_solution(trace, std::to_string(result))}});
  }
  return out;
}

std::vector<nlohmann::json> make_countdown(const config::CountdownTaskConfig& cfg, int64_t n, uint64_t seed) {
  GRPO_REQUIRE(cfg.min_numbers <= cfg.max_numbers, "task.countdown.min_numbers must be <= task.countdown.max_numbers");
  GRPO_REQUIRE(cfg.min_target <= cfg.max_target, "task.countdown.min_target must be <= task.countdown.max_target");
  std::mt19937_64 rng(seed);
  std::vector<nlohmann::json> out;
  int64_t attempts = 0;
  while (static_cast<int64_t>(out.size()) < n) {
    GRPO_REQUIRE(++attempts <= 200 * n + 1000, "task.countdown: could not find ", n,
                 " solvable problems; widen max_target or max_number");
    int64_t count = uniform(rng, cfg.min_numbers, cfg.max_numbers);
    std::vector<int64_t> nums;
    for (int64_t k = 0; k < count; ++k) nums.push_back(uniform(rng, 1, cfg.max_number));
    int64_t target = uniform(rng, cfg.min_target, cfg.max_target);
    auto sol = solve_countdown(nums, target);
    if (!sol) continue;
    std::string question = "Using the numbers [" + join_ints(nums) +
                           "], create an equation that equals " + std::to_string(target) +
                           ". You can use + - * / and each number exactly once.";
    out.push_back({{"prompt", question + kR1Instruction},
                   {"question", question},
                   {"nums", nums},
                   {"target", target},
                   {"answer", std::to_string(target)},
                   {"solution", r1_solution(*sol + " = " + std::to_string(target) + ".", *sol)}});
  }
  return out;
}

std::string default_task_source(config::TaskName name) {
  const std::string dir = fs::data_dir();  // where scripts/fetch_assets.sh writes
  switch (name) {
    case config::TaskName::GSM8K: return dir + "/gsm8k/gsm8k.jsonl";
    case config::TaskName::HUMANEVAL: return dir + "/humaneval/humaneval.jsonl";
    default: return "";
  }
}

namespace {

// Reads a converted JSONL file; every row must be an object with the string fields `required`.
std::vector<nlohmann::json> read_source(const std::string& path, config::TaskName name,
                                        const std::vector<std::string>& required) {
  const std::string task(config::enum_name(name));
  GRPO_REQUIRE(std::filesystem::is_regular_file(path), "task ", task, ": source file '", path,
               "' not found: run scripts/setup.sh (or scripts/fetch_assets.sh) to fetch and convert it, or set "
               "task.source");
  std::istringstream in(fs::read_file(path));
  std::vector<nlohmann::json> rows;
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw InputError(str(path, ":", lineno, ": not a JSON object (", e.what(), ")"));
    }
    GRPO_REQUIRE(r.is_object(), path, ":", lineno, ": expected a JSON object per line");
    for (const auto& f : required)
      GRPO_REQUIRE(r.contains(f), path, ":", lineno, ": missing field '", f, "' (expected a ", task,
                   " row as written by scripts/fetch_assets.sh)");
    rows.push_back(std::move(r));
  }
  GRPO_REQUIRE(!rows.empty(), "task ", task, ": source file '", path, "' has no rows");
  return rows;
}

// GSM8K's worked solution without its <<a*b=c>> calculator annotations and its "#### n" line.
std::string gsm8k_steps(std::string s) {
  for (size_t a; (a = s.find("<<")) != std::string::npos;) {
    size_t b = s.find(">>", a);
    if (b == std::string::npos) break;
    s.erase(a, b + 2 - a);
  }
  if (size_t h = s.rfind("####"); h != std::string::npos) s.erase(h);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::vector<nlohmann::json> load_gsm8k(const std::string& path) {
  auto src = read_source(path, config::TaskName::GSM8K, {"question", "answer"});
  std::vector<nlohmann::json> out;
  for (auto& r : src) {
    std::string q = r["question"].get<std::string>(), a = r["answer"].get<std::string>();
    nlohmann::json row = {{"prompt", q + kR1Instruction}, {"question", q}, {"answer", a}};
    if (r.contains("solution")) row["solution"] = r1_solution(gsm8k_steps(r["solution"].get<std::string>()), a);
    if (r.contains("group")) row["group"] = r["group"];
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<nlohmann::json> load_humaneval(const std::string& path) {
  auto src = read_source(path, config::TaskName::HUMANEVAL, {"task_id", "prompt", "entry_point", "tests"});
  std::vector<nlohmann::json> out;
  for (auto& r : src) {
    std::string code = r["prompt"].get<std::string>();
    nlohmann::json row = {{"prompt", std::string(kCodeInstruction) + "```python\n" + code + "```"},
                          {"task_id", r["task_id"]},
                          {"entry_point", r["entry_point"]},
                          {"tests", r["tests"]}};
    if (r.contains("canonical_solution")) {
      row["canonical_solution"] = r["canonical_solution"];
      row["solution"] = "```python\n" + code + r["canonical_solution"].get<std::string>() + "```";
    }
    out.push_back(std::move(row));
  }
  return out;
}

// Seeded split of a fixed dataset: whole groups (row "group", else the prompt) go to the held-out
// side until it has num_eval rows, so no group (a GSM-Symbolic template) straddles the split.
void split_dataset(std::vector<nlohmann::json> rows, const config::TaskConfig& task, std::vector<nlohmann::json>& train,
                   std::vector<nlohmann::json>& eval) {
  const std::string name(config::enum_name(task.name));
  std::vector<std::string> order;
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string g = rows[i].contains("group") ? rows[i]["group"].get<std::string>() : rows[i]["prompt"].get<std::string>();
    auto [it, fresh] = groups.try_emplace(g);
    if (fresh) order.push_back(g);
    it->second.push_back(i);
  }
  std::mt19937_64 rng(static_cast<uint64_t>(task.seed));
  auto shuffle = [&](auto& v) {  // Fisher-Yates with the portable uniform()
    for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(uniform(rng, 0, i))]);
  };
  shuffle(order);
  std::set<std::string> eval_prompts;
  size_t g = 0;
  for (; g < order.size() && static_cast<int>(eval.size()) < task.num_eval; ++g)
    for (size_t i : groups[order[g]])
      if (static_cast<int>(eval.size()) < task.num_eval && eval_prompts.insert(rows[i]["prompt"].get<std::string>()).second)
        eval.push_back(rows[i]);
  GRPO_REQUIRE(static_cast<int>(eval.size()) == task.num_eval, "task ", name, ": the source has only ", eval.size(),
               " distinct problems; lower task.num_eval");
  std::vector<size_t> rest;
  for (; g < order.size(); ++g)
    for (size_t i : groups[order[g]])
      if (!eval_prompts.count(rows[i]["prompt"].get<std::string>())) rest.push_back(i);
  shuffle(rest);
  GRPO_REQUIRE(static_cast<int64_t>(rest.size()) >= task.num_train, "task ", name, ": only ", rest.size(),
               " training problems remain after holding out ", eval.size(), " (the source has ", rows.size(),
               " rows); lower task.num_train or task.num_eval");
  for (int64_t k = 0; k < task.num_train; ++k) train.push_back(std::move(rows[rest[size_t(k)]]));
}

void write_rows(const std::vector<nlohmann::json>& train_rows, const std::vector<nlohmann::json>& eval_rows,
                const std::string& train_path, const std::string& eval_path) {
  auto dump = [](const std::vector<nlohmann::json>& rows) {
    std::string s;
    for (const auto& r : rows) s += r.dump() + "\n";
    return s;
  };
  for (const auto& p : {train_path, eval_path}) {
    auto dir = std::filesystem::path(p).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
  }
  fs::atomic_write(train_path, dump(train_rows));
  fs::atomic_write(eval_path, dump(eval_rows));
}

}  // namespace

void write_task_splits(const config::TaskConfig& task, const std::string& train_path, const std::string& eval_path) {
  if (task.name == config::TaskName::GSM8K || task.name == config::TaskName::HUMANEVAL) {
    const std::string src = task.source.empty() ? default_task_source(task.name) : fs::expand_path(task.source);
    auto rows = task.name == config::TaskName::GSM8K ? load_gsm8k(src) : load_humaneval(src);
    std::vector<nlohmann::json> train_rows, eval_rows;
    split_dataset(std::move(rows), task, train_rows, eval_rows);
    write_rows(train_rows, eval_rows, train_path, eval_path);
    return;
  }
  std::function<std::vector<nlohmann::json>(int64_t, uint64_t)> gen, eval_gen;
  switch (task.name) {
    case config::TaskName::WORD_PROBLEMS:  // held-out rows come from templates training never sees
      gen = [&](int64_t n, uint64_t s) { return make_word_problems(task.word_problems, n, s, false); };
      eval_gen = [&](int64_t n, uint64_t s) { return make_word_problems(task.word_problems, n, s, true); };
      break;
    case config::TaskName::ARITHMETIC:
      gen = [&](int64_t n, uint64_t s) { return make_arithmetic(task.arithmetic, n, s); };
      break;
    case config::TaskName::COUNTDOWN:
      gen = [&](int64_t n, uint64_t s) { return make_countdown(task.countdown, n, s); };
      break;
    case config::TaskName::NONE:
      throw InputError("task.name is none: set task.name (arithmetic, countdown, word_problems, gsm8k, humaneval) or give data files");
    default:
      throw InputError(str("task.name '", config::enum_name(task.name), "' has no generator"));
  }
  // Draw eval first, then train examples whose prompts are not in eval (held-out stays held out).
  std::set<std::string> eval_prompts;
  std::vector<nlohmann::json> eval_rows, train_rows;
  uint64_t seed = static_cast<uint64_t>(task.seed);
  for (auto& r : (eval_gen ? eval_gen : gen)(task.num_eval * 2 + 16, seed ^ 0x5eed5eedULL)) {
    if (static_cast<int>(eval_rows.size()) >= task.num_eval) break;
    if (eval_prompts.insert(r["prompt"].get<std::string>()).second) eval_rows.push_back(std::move(r));
  }
  GRPO_REQUIRE(static_cast<int>(eval_rows.size()) == task.num_eval, "task: only ", eval_rows.size(),
               " distinct held-out problems exist for these parameters; lower task.num_eval");
  int64_t want = task.num_train;
  for (int round = 0; round < 8 && static_cast<int64_t>(train_rows.size()) < want; ++round) {
    for (auto& r : gen(want, seed + 1 + static_cast<uint64_t>(round))) {
      if (static_cast<int64_t>(train_rows.size()) >= want) break;
      if (!eval_prompts.count(r["prompt"].get<std::string>())) train_rows.push_back(std::move(r));
    }
  }
  GRPO_REQUIRE(static_cast<int64_t>(train_rows.size()) == want, "task: could not draw ", want,
               " training problems outside the held-out set; widen the task's parameters");
  write_rows(train_rows, eval_rows, train_path, eval_path);
}

}  // namespace grpo::data
