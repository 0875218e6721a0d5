#include "grpo/reward/countdown_reward.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <numeric>

#include "completion_parts.h"

namespace grpo::reward {
namespace {

struct Fail {
  CountdownEval::Status status;
  std::string why;
};

bool mul_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

Rational reduce(int64_t n, int64_t d) {
  if (d < 0) {
    if (n == INT64_MIN || d == INT64_MIN) throw Fail{CountdownEval::OVERFLOW, "overflow"};
    n = -n;
    d = -d;
  }
  int64_t g = std::gcd(n < 0 ? -n : n, d);
  if (g > 1) {
    n /= g;
    d /= g;
  }
  return {n, d};
}

Rational add(const Rational& a, const Rational& b, bool subtract) {
  int64_t x, y, d, n;
  if (!mul_ok(a.num, b.den, x) || !mul_ok(b.num, a.den, y) || !mul_ok(a.den, b.den, d))
    throw Fail{CountdownEval::OVERFLOW, "overflow"};
  if (subtract ? __builtin_sub_overflow(x, y, &n) : __builtin_add_overflow(x, y, &n))
    throw Fail{CountdownEval::OVERFLOW, "overflow"};
  return reduce(n, d);
}

Rational mul(const Rational& a, const Rational& b) {
  int64_t n, d;
  if (!mul_ok(a.num, b.num, n) || !mul_ok(a.den, b.den, d)) throw Fail{CountdownEval::OVERFLOW, "overflow"};
  return reduce(n, d);
}

Rational div(const Rational& a, const Rational& b) {
  if (b.num == 0) throw Fail{CountdownEval::DIVISION_BY_ZERO, "division by zero"};
  return mul(a, Rational{b.den, b.num});
}

// expr := term (('+' | '-') term)* ; term := factor (('*' | '/') factor)* ;
// factor := integer | '(' expr ')'
class Parser {
 public:
  Parser(std::string_view s, std::vector<int64_t>& nums) : s_(s), nums_(nums) {}
  Rational expr() {
    if (++depth_ > 64) throw Fail{CountdownEval::SYNTAX_ERROR, "nested too deeply"};
    Rational v = term();
    while (true) {
      ws();
      if (at('+') || at('-')) {
        bool sub = s_[i_++] == '-';
        v = add(v, term(), sub);
      } else {
        break;
      }
    }
    --depth_;
    return v;
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool done() {
    ws();
    return i_ == s_.size();
  }
  size_t pos() const { return i_; }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  Rational term() {
    Rational v = factor();
    while (true) {
      ws();
      if (at('*') || at('/')) {
        bool d = s_[i_++] == '/';
        Rational r = factor();
        v = d ? div(v, r) : mul(v, r);
      } else {
        break;
      }
    }
    return v;
  }
  Rational factor() {
    ws();
    if (at('(')) {
      ++i_;
      Rational v = expr();
      ws();
      if (!at(')')) throw Fail{CountdownEval::SYNTAX_ERROR, "expected ')' at offset " + std::to_string(i_)};
      ++i_;
      return v;
    }
    if (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      int64_t v = 0;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
        if (!mul_ok(v, 10, v) || __builtin_add_overflow(v, s_[i_] - '0', &v))
          throw Fail{CountdownEval::OVERFLOW, "number too large"};
        ++i_;
      }
      if (at('.')) throw Fail{CountdownEval::SYNTAX_ERROR, "decimals are not allowed"};
      nums_.push_back(v);
      return {v, 1};
    }
    if (i_ >= s_.size()) throw Fail{CountdownEval::SYNTAX_ERROR, "unexpected end of equation"};
    throw Fail{CountdownEval::SYNTAX_ERROR,
               "unexpected '" + std::string(1, s_[i_]) + "' at offset " + std::to_string(i_)};
  }
  std::string_view s_;
  std::vector<int64_t>& nums_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

CountdownEval evaluate_countdown(std::string_view equation, std::optional<Rational>* rhs) {
  CountdownEval out;
  if (rhs) rhs->reset();
  if (equation.size() > 1000) {
    out.error = "equation longer than 1000 bytes";
    return out;
  }
  std::string_view lhs = equation, right;
  size_t eq = equation.find('=');
  if (eq != std::string_view::npos) {
    lhs = equation.substr(0, eq);
    right = equation.substr(eq + 1);
  }
  try {
    Parser p(lhs, out.numbers);
    out.value = p.expr();
    if (!p.done()) throw Fail{CountdownEval::SYNTAX_ERROR, "unexpected '" + std::string(1, lhs[p.pos()]) + "'"};
    if (eq != std::string_view::npos) {
      std::vector<int64_t> ignored;
      Parser q(right, ignored);
      Rational r = q.expr();
      if (!q.done() || ignored.size() != 1) throw Fail{CountdownEval::SYNTAX_ERROR, "after '=' only a number may follow"};
      if (rhs) *rhs = r;
    }
    out.status = CountdownEval::OK;
  } catch (const Fail& f) {
    out.status = f.status;
    out.error = f.why;
  }
  return out;
}

float countdown_score(std::string_view completion, const std::vector<int64_t>& numbers, int64_t target,
                      const config::CountdownParams& p) {
  auto content = last_tag_content(answer_region(completion, p.think_tag), p.answer_tag);
  if (!content) return 0.0f;
  std::optional<Rational> rhs;
  CountdownEval ev = evaluate_countdown(*content, &rhs);
  if (ev.status != CountdownEval::OK) return 0.0f;  // no equation, or 1/0: nothing to reward
  std::vector<int64_t> used = ev.numbers, given = numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  const Rational t{target, 1};
  bool correct = used == given && ev.value == t && (!rhs || *rhs == t);
  return correct ? 1.0f : static_cast<float>(p.format_score);
}

float CountdownReward::score_row(const RewardInput& row, std::string& problem) const {
  const auto& ref = row.reference;
  if (!ref.is_object() || !ref.contains(p_.numbers_field) || !ref.at(p_.numbers_field).is_array()) {
    problem = "reference field '" + p_.numbers_field + "' must be a list of integers";
    return 0.0f;
  }
  std::vector<int64_t> nums;
  for (const auto& n : ref.at(p_.numbers_field)) {
    if (!n.is_number_integer()) {
      problem = "reference field '" + p_.numbers_field + "' must be a list of integers, found " + n.dump();
      return 0.0f;
    }
    nums.push_back(n.get<int64_t>());
  }
  if (!ref.contains(p_.target_field)) {
    problem = "reference field '" + p_.target_field + "' is missing";
    return 0.0f;
  }
  const auto& t = ref.at(p_.target_field);
  int64_t target = 0;
  if (t.is_number_integer()) {
    target = t.get<int64_t>();
  } else if (t.is_string()) {
    const std::string s = t.get<std::string>();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0) {
      problem = "reference field '" + p_.target_field + "' must be an integer, got \"" + s + "\"";
      return 0.0f;
    }
    target = v;
  } else {
    problem = "reference field '" + p_.target_field + "' must be an integer, got " + t.dump();
    return 0.0f;
  }
  std::string own;  // the completion without tool outputs: a printed equation must be restated
  return countdown_score(policy_text(row, own), nums, target, p_);
}

}  // namespace grpo::reward
