#include "grpo/data/tasks.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <set>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::data {

const char* const kR1Instruction =
    " Think step by step inside <think> </think> tags, then give the final answer inside <answer> </answer> tags.";

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
  std::mt19937_64 rng(seed);
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
    std::string question = "What is " + std::to_string(a) + " " + op + " " + std::to_string(b) + "?";
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

void write_task_splits(const config::TaskConfig& task, const std::string& train_path, const std::string& eval_path) {
  std::function<std::vector<nlohmann::json>(int64_t, uint64_t)> gen;
  switch (task.name) {
    case config::TaskName::ARITHMETIC:
      gen = [&](int64_t n, uint64_t s) { return make_arithmetic(task.arithmetic, n, s); };
      break;
    case config::TaskName::COUNTDOWN:
      gen = [&](int64_t n, uint64_t s) { return make_countdown(task.countdown, n, s); };
      break;
    case config::TaskName::NONE:
      throw InputError("task.name is none: set task.name (arithmetic, countdown, gsm8k, humaneval) or give data files");
    default:
      throw InputError(str("task.name '", config::enum_name(task.name),
                           "' is converted at set-up time (scripts/fetch_assets.sh), not generated"));
  }
  // Draw eval first, then train examples whose prompts are not in eval (held-out stays held out).
  std::set<std::string> eval_prompts;
  std::vector<nlohmann::json> eval_rows, train_rows;
  uint64_t seed = static_cast<uint64_t>(task.seed);
  for (auto& r : gen(task.num_eval * 2 + 16, seed ^ 0x5eed5eedULL)) {
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

}  // namespace grpo::data
