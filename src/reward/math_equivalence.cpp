#include "grpo/reward/math_equivalence.h"

#include <ginac/ginac.h>
#include <re2/re2.h>

#include <cctype>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

#include "grpo/util/strings.h"

namespace grpo::reward {
namespace {

using GiNaC::ex;
using GiNaC::numeric;

constexpr size_t kMaxRaw = 1000;        // bytes of an answer before normalisation
constexpr size_t kMaxNormalized = 400;  // bytes after
constexpr size_t kMaxDigits = 300;      // digits of one number literal
constexpr int kMaxDepth = 200;          // recursion of the parser (about 5 per bracket level)
constexpr int kMaxBits = 20000;         // size of an exact power's result
constexpr int kMaxSymbolicExponent = 64;
constexpr int kMaxFactorial = 500;

// GiNaC's reference counting is not thread-safe; every GiNaC object lives under this lock.
std::mutex& ginac_mutex() {
  static std::mutex mu;
  return mu;
}

struct ParseFail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------- normalisation

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Position of `\cmd` as a whole command name (not a prefix of a longer one), from `from`.
size_t find_command(const std::string& s, std::string_view cmd, size_t from = 0) {
  for (size_t p = s.find(cmd, from); p != std::string::npos; p = s.find(cmd, p + 1)) {
    size_t e = p + cmd.size();
    if (e >= s.size() || !is_letter(s[e])) return p;
  }
  return std::string::npos;
}

size_t match_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

// "\text{abc}" -> "abc" for a wrapper command; a bare wrapper without braces is dropped.
void unwrap(std::string& s, std::string_view cmd) {
  for (size_t p = find_command(s, cmd); p != std::string::npos; p = find_command(s, cmd, p)) {
    size_t q = p + cmd.size();
    while (q < s.size() && s[q] == ' ') ++q;
    if (q < s.size() && s[q] == '{') {
      size_t e = match_brace(s, q);
      if (e == std::string::npos) return;  // unclosed: leave it, the parser will refuse it
      s.erase(e, 1);
      s.erase(p, q + 1 - p);
    } else {
      s.erase(p, cmd.size());
    }
  }
}

void remove_command(std::string& s, std::string_view cmd) {
  for (size_t p = find_command(s, cmd); p != std::string::npos; p = find_command(s, cmd, p)) s.erase(p, cmd.size());
}

const std::set<std::string, std::less<>>& math_words() {
  static const std::set<std::string, std::less<>> w = {"pi", "sqrt", "sin", "cos", "tan", "ln", "log", "exp",
                                                       "inf", "infinity", "oo"};
  return w;
}

// Drops trailing unit words: "5 cm" -> "5", "12 square feet" -> "12". Only words of two or more
// letters after whitespace, and only when what remains ends like a number or a group.
void strip_units(std::string& s) {
  while (true) {
    size_t end = s.size();
    while (end > 0 && (s[end - 1] == '.' || is_space(s[end - 1]))) --end;
    size_t b = end;
    while (b > 0 && is_letter(s[b - 1])) --b;
    if (end - b < 2 || b == 0 || !is_space(s[b - 1])) return;
    if (math_words().count(s.substr(b, end - b))) return;
    size_t keep = b;
    while (keep > 0 && is_space(s[keep - 1])) --keep;
    if (keep == 0) return;
    char last = s[keep - 1];
    bool has_digit = false;
    for (size_t i = 0; i < keep; ++i) has_digit = has_digit || is_digit(s[i]);
    if (!has_digit) return;
    if (!(is_digit(last) || last == '}' || last == ')' || is_letter(last))) return;
    s.erase(keep);
  }
}

bool is_simple_lhs(std::string_view lhs) {
  static const re2::RE2 re(R"(\\?[A-Za-z]+(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?)");
  return re2::RE2::FullMatch(re2::StringPiece(lhs.data(), lhs.size()), re);
}

// The right-hand side of "lhs = rhs" when lhs is a plain variable or function name, else `s`.
std::string_view right_hand_side(std::string_view s) {
  size_t eq = s.find('=');
  if (eq != std::string_view::npos && is_simple_lhs(trim(s.substr(0, eq)))) return trim(s.substr(s.rfind('=') + 1));
  return s;
}

std::string normalize(std::string_view text, bool* percent) {
  std::string s(text);
  if (percent) *percent = false;
  if (s.size() > kMaxRaw) return s;
  // Unicode look-alikes of LaTeX.
  replace_all(s, "\u2212", "-");
  replace_all(s, "\u00d7", "\\times ");
  replace_all(s, "\u00f7", "\\div ");
  replace_all(s, "\u00b7", "\\cdot ");
  replace_all(s, "\u22c5", "\\cdot ");
  replace_all(s, "\u03c0", "\\pi ");
  replace_all(s, "\u221a", "\\sqrt");
  replace_all(s, "\u221e", "\\infty ");
  replace_all(s, "\u00b0", "");
  replace_all(s, "\u00a0", " ");
  replace_all(s, "\u2009", " ");
  // Math-mode wrappers.
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  replace_all(s, "\\(", "");
  replace_all(s, "\\)", "");
  replace_all(s, "\\[", "");
  replace_all(s, "\\]", "");
  for (std::string_view w : {"\\text", "\\textbf", "\\textrm", "\\textit", "\\textsf", "\\texttt", "\\mathrm",
                             "\\mathbf", "\\mathit", "\\mathsf", "\\mbox", "\\operatorname", "\\boxed", "\\fbox",
                             "\\hbox", "\\emph"})
    unwrap(s, w);
  replace_all(s, "\\left.", "");
  replace_all(s, "\\right.", "");
  for (std::string_view c : {"\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
                             "\\displaystyle", "\\limits", "\\quad", "\\qquad", "\\degree"})
    remove_command(s, c);
  for (std::string_view c : {"\\!", "\\,", "\\;", "\\:", "\\ ", "~", "{,}"}) replace_all(s, c, "");
  for (std::string_view c : {"^{\\circ}", "^\\circ", "^{\\circ }"}) replace_all(s, c, "");
  remove_command(s, "\\circ");
  if (s.find('%') != std::string::npos) {
    if (percent) *percent = true;
    replace_all(s, "\\%", "");
    replace_all(s, "%", "");
  }
  for (std::string_view c : {"\\dfrac", "\\tfrac", "\\cfrac"}) {
    for (size_t p = find_command(s, c); p != std::string::npos; p = find_command(s, c, p)) s.replace(p, c.size(), "\\frac");
  }
  // Markdown emphasis and sentence punctuation around the answer.
  auto strip_ends = [&] {
    size_t b = 0, e = s.size();
    while (b < e && (is_space(s[b]) || s[b] == '*')) ++b;
    while (e > b && (is_space(s[e - 1]) || s[e - 1] == '*' || s[e - 1] == '.' || s[e - 1] == ';')) --e;
    s = s.substr(b, e - b);
  };
  strip_ends();
  // "x = 5", "f(x) = 2x + 1": keep the right-hand side of the last '=' (or \approx). In a list
  // ("x = 5, y = 3") each element is handled by parse_item() instead.
  replace_all(s, "\\approx", "=");
  if (s.find(',') == std::string::npos) {
    s = std::string(right_hand_side(s));
    strip_ends();
  }
  strip_units(s);
  strip_ends();
  // Thousands separators, only when the whole answer is one such number ("1,000" is never a pair).
  static const re2::RE2 commas(R"(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?)");
  static const re2::RE2 spaces(R"(-?\d{1,3}(?: \d{3})+(?:\.\d+)?)");
  if (re2::RE2::FullMatch(s, commas)) replace_all(s, ",", "");
  if (re2::RE2::FullMatch(s, spaces)) replace_all(s, " ", "");
  return s;
}

// ---------------------------------------------------------------- parsing into GiNaC

class Symbols {
 public:
  ex get(const std::string& name) {
    auto it = table_.find(name);
    if (it == table_.end()) it = table_.emplace(name, GiNaC::symbol(name)).first;
    return it->second;
  }
  void clear_if_large() {
    if (table_.size() > 10000) table_.clear();
  }

 private:
  std::map<std::string, GiNaC::symbol> table_;
};

Symbols& symbols() {
  static Symbols* s = new Symbols;
  return *s;
}

const std::set<std::string, std::less<>>& greek() {
  static const std::set<std::string, std::less<>> g = {
      "alpha", "beta",  "gamma", "delta",   "epsilon", "varepsilon", "zeta",  "eta",   "theta", "vartheta",
      "iota",  "kappa", "lambda", "mu",     "nu",      "xi",         "rho",   "sigma", "tau",   "upsilon",
      "phi",   "varphi", "chi",  "psi",     "omega",   "Gamma",      "Delta", "Theta", "Lambda", "Xi",
      "Sigma", "Phi",   "Psi",   "Omega"};
  return g;
}

const std::set<std::string, std::less<>>& functions() {
  static const std::set<std::string, std::less<>> f = {"sqrt", "sin", "cos", "tan", "ln", "log", "exp",
                                                       "arcsin", "arccos", "arctan", "sec", "csc", "cot"};
  return f;
}

ex apply_function(const std::string& f, const ex& x) {
  if (f == "sqrt") return GiNaC::sqrt(x);
  if (f == "sin") return GiNaC::sin(x);
  if (f == "cos") return GiNaC::cos(x);
  if (f == "tan") return GiNaC::tan(x);
  if (f == "ln" || f == "log") return GiNaC::log(x);
  if (f == "exp") return GiNaC::exp(x);
  if (f == "arcsin") return GiNaC::asin(x);
  if (f == "arccos") return GiNaC::acos(x);
  if (f == "arctan") return GiNaC::atan(x);
  if (f == "sec") return 1 / GiNaC::cos(x);
  if (f == "csc") return 1 / GiNaC::sin(x);
  if (f == "cot") return GiNaC::cos(x) / GiNaC::sin(x);
  throw ParseFail("unknown function " + f);
}

int bits_of(const numeric& q) { return q.numer().int_length() + q.denom().int_length(); }

// base^exponent, refusing results too large to compute quickly (10^10^10, (x+1)^1000).
ex make_pow(const ex& base, const ex& exponent) {
  if (GiNaC::is_a<numeric>(exponent)) {
    const numeric e = GiNaC::ex_to<numeric>(exponent);
    if (!e.is_real()) throw ParseFail("complex exponent");
    if (!e.is_rational()) {
      if (GiNaC::abs(e) > 10000) throw ParseFail("exponent too large");
      return GiNaC::pow(base, exponent);
    }
    const numeric num = GiNaC::abs(e.numer());
    if (num > 100000) throw ParseFail("exponent too large");
    if (GiNaC::is_a<numeric>(base)) {
      const numeric b = GiNaC::ex_to<numeric>(base);
      if (b.is_rational() && !b.is_zero()) {
        double bits = static_cast<double>(bits_of(b)) * num.to_double();
        if (bits > kMaxBits) throw ParseFail("power too large");
      } else if (num > 10000) {
        throw ParseFail("exponent too large");
      }
    } else if (num > kMaxSymbolicExponent) {
      throw ParseFail("symbolic power too large");
    }
  }
  return GiNaC::pow(base, exponent);
}

ex infinity() { return symbols().get("\\infty"); }

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  ex parse_all() {
    ex e = expr();
    ws();
    if (i_ != s_.size()) throw ParseFail("unexpected '" + std::string(1, s_[i_]) + "'");
    return e;
  }

 private:
  struct Depth {
    explicit Depth(int& d) : d_(d) {
      if (++d_ > kMaxDepth) throw ParseFail("nested too deeply");
    }
    ~Depth() { --d_; }
    int& d_;
  };

  void ws() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  bool peek(char c) {
    ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++i_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) throw ParseFail(std::string("expected '") + c + "'");
  }
  // The name of the command at i_ ("\frac" -> "frac") without consuming it; "" if none.
  std::string peek_command() {
    ws();
    if (i_ >= s_.size() || s_[i_] != '\\') return "";
    size_t j = i_ + 1;
    while (j < s_.size() && is_letter(s_[j])) ++j;
    if (j == i_ + 1 && j < s_.size()) return std::string(1, s_[j]);
    return std::string(s_.substr(i_ + 1, j - i_ - 1));
  }
  void take_command(const std::string& name) { i_ += 1 + name.size(); }

  bool is_value_command(const std::string& c) {
    return c == "frac" || c == "sqrt" || c == "pi" || c == "infty" || c == "infin" || greek().count(c) ||
           functions().count(c);
  }
  bool starts_primary() {
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (is_digit(c) || is_letter(c) || c == '(' || c == '[' || c == '{') return true;
    if (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1])) return true;
    if (c == '\\') return is_value_command(peek_command());
    return false;
  }

  ex expr() {
    Depth d(depth_);
    ex left = term();
    while (true) {
      if (eat('+')) left = left + term();
      else if (eat('-')) left = left - term();
      else return left;
    }
  }

  ex term() {
    Depth d(depth_);
    ex left = unary();
    while (true) {
      std::string cmd = peek_command();
      if (eat('*') || cmd == "cdot" || cmd == "times") {
        if (!cmd.empty()) take_command(cmd);
        left = left * unary();
      } else if (eat('/') || cmd == "div") {
        if (cmd == "div") take_command(cmd);
        ex r = unary();
        if (r.is_zero()) throw ParseFail("division by zero");
        left = left / r;
      } else if (starts_primary()) {
        left = left * power();  // implicit multiplication: 2x, 2\sqrt{3}, (1)(2)
      } else {
        return left;
      }
    }
  }

  ex unary() {
    Depth d(depth_);
    if (eat('-')) return -unary();
    if (eat('+')) return unary();
    return power();
  }

  ex power() {
    Depth d(depth_);
    ex base = postfix();
    if (eat('^')) return make_pow(base, unary());
    return base;
  }

  ex postfix() {
    ex e = primary();
    while (peek('!') && !(i_ + 1 < s_.size() && s_[i_ + 1] == '=')) {
      ++i_;
      if (!GiNaC::is_a<numeric>(e) || !GiNaC::ex_to<numeric>(e).is_nonneg_integer() ||
          GiNaC::ex_to<numeric>(e) > kMaxFactorial)
        throw ParseFail("factorial of a non-integer or too large a number");
      e = GiNaC::factorial(e);
    }
    return e;
  }

  ex number() {
    size_t b = i_;
    std::string digits;
    long frac = 0;
    while (i_ < s_.size() && is_digit(s_[i_])) digits += s_[i_++];
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      while (i_ < s_.size() && is_digit(s_[i_])) {
        digits += s_[i_++];
        ++frac;
      }
    }
    long exp10 = 0;
    if (i_ + 1 < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      size_t j = i_ + 1;
      bool neg = false;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) neg = s_[j++] == '-';
      if (j < s_.size() && is_digit(s_[j])) {
        std::string e;
        while (j < s_.size() && is_digit(s_[j])) e += s_[j++];
        if (e.size() > 4) throw ParseFail("exponent too large");
        exp10 = std::stol(e) * (neg ? -1 : 1);
        i_ = j;
      }
    }
    if (digits.empty()) throw ParseFail("bad number at " + std::to_string(b));
    if (digits.size() > kMaxDigits || exp10 > 3000 || exp10 < -3000) throw ParseFail("number too large");
    numeric v(digits.c_str());
    long shift = exp10 - frac;
    numeric ten(10);
    if (shift > 0) v = v * ten.power(numeric(shift));
    if (shift < 0) v = v / ten.power(numeric(-shift));
    return v;
  }

  // \frac and \sqrt arguments: {group}, or a single digit or letter (\frac12, \sqrt2).
  ex argument() {
    ws();
    if (i_ >= s_.size()) throw ParseFail("missing argument");
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      ex e = expr();
      expect('}');
      return e;
    }
    if (is_digit(c)) {
      ++i_;
      return numeric(c - '0');
    }
    if (is_letter(c)) {
      ++i_;
      return symbols().get(std::string(1, c));
    }
    if (c == '\\') return primary();
    throw ParseFail("bad argument");
  }

  std::string subscript(std::string name) {
    if (i_ < s_.size() && s_[i_] == '_') {
      ++i_;
      if (i_ < s_.size() && s_[i_] == '{') {
        size_t e = s_.find('}', i_);
        if (e == std::string_view::npos) throw ParseFail("unclosed subscript");
        name += "_" + std::string(s_.substr(i_ + 1, e - i_ - 1));
        i_ = e + 1;
      } else if (i_ < s_.size() && (is_digit(s_[i_]) || is_letter(s_[i_]))) {
        name += "_" + std::string(1, s_[i_++]);
      } else {
        throw ParseFail("bad subscript");
      }
    }
    return name;
  }

  ex function_argument() {
    ws();
    if (peek('(') || peek('{') || peek('[')) return primary();
    return postfix();
  }

  ex primary() {
    Depth d(depth_);
    ws();
    if (i_ >= s_.size()) throw ParseFail("unexpected end");
    char c = s_[i_];
    if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) return number();
    for (auto [o, cl] : {std::pair{'(', ')'}, std::pair{'[', ']'}, std::pair{'{', '}'}}) {
      if (c == o) {
        ++i_;
        ex e = expr();
        expect(cl);
        return e;
      }
    }
    if (c == '|') {
      ++i_;
      ex e = expr();
      expect('|');
      return GiNaC::abs(e);
    }
    if (is_letter(c)) {
      size_t j = i_;
      while (j < s_.size() && is_letter(s_[j])) ++j;
      std::string word(s_.substr(i_, j - i_));
      if (functions().count(word)) {
        i_ = j;
        return apply_function(word, function_argument());
      }
      if (word == "pi") {
        i_ = j;
        return GiNaC::Pi;
      }
      if (word == "inf" || word == "infinity" || word == "oo") {
        i_ = j;
        return infinity();
      }
      if (word.size() > 2) throw ParseFail("word '" + word + "' is not math");
      // One or two letters: symbols multiplied (xy), the last may carry a subscript.
      ex e = 1;
      for (size_t k = 0; k < word.size(); ++k) {
        ++i_;
        std::string name(1, word[k]);
        if (k + 1 == word.size()) name = subscript(name);
        e = e * symbols().get(name);
      }
      return e;
    }
    if (c == '\\') {
      std::string cmd = peek_command();
      take_command(cmd);
      if (cmd == "frac") {
        ex a = argument();
        ex b = argument();
        if (b.is_zero()) throw ParseFail("division by zero");
        return a / b;
      }
      if (cmd == "sqrt") {
        if (eat('[')) {
          ex n = expr();
          expect(']');
          if (n.is_zero()) throw ParseFail("zeroth root");
          return make_pow(argument(), 1 / n);
        }
        return GiNaC::sqrt(argument());
      }
      if (cmd == "pi") return GiNaC::Pi;
      if (cmd == "infty" || cmd == "infin") return infinity();
      if (greek().count(cmd)) return symbols().get(subscript("\\" + cmd));
      if (functions().count(cmd)) return apply_function(cmd, function_argument());
      throw ParseFail("unsupported command \\" + cmd);
    }
    throw ParseFail("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------- structure and comparison

struct Parsed {
  enum Kind { EXPR, ORDERED, UNORDERED, TEXT } kind = EXPR;
  char open = 0, close = 0;
  std::vector<ex> items;
  std::string text;
  bool percent = false;
};

bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }

// Splits on commas outside brackets. Returns false when brackets do not balance.
bool split_top(std::string_view s, std::vector<std::string_view>& parts) {
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) c = s[++i];
    if (is_open(c)) ++depth;
    else if (is_close(c) && --depth < 0) return false;
    else if (c == ',' && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return depth == 0;
}

// True when the brackets at s[0] and s[last] enclose the whole string (never closing at depth 0
// before the end), so "(1)+(2)" is not one group.
bool wraps_whole(std::string_view s, size_t open_len, size_t close_len) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) c = s[++i];
    if (is_open(c)) ++depth;
    else if (is_close(c)) {
      --depth;
      if (depth == 0 && i + 1 < s.size()) return false;
    }
  }
  (void)open_len;
  (void)close_len;
  return depth == 0;
}

ex parse_item(std::string_view s) {
  std::string_view t = trim(right_hand_side(trim(s)));
  if (t.empty()) throw ParseFail("empty element");
  return Parser(t).parse_all();
}

bool plain_words(const std::string& s) {
  static const re2::RE2 re(R"([A-Za-z][A-Za-z' \-]*)");
  return re2::RE2::FullMatch(s, re);
}

std::string lower_collapsed(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

Parsed parse_answer(std::string_view raw) {
  if (raw.size() > kMaxRaw) throw ParseFail("longer than 1000 bytes");
  Parsed p;
  std::string s = normalize(raw, &p.percent);
  if (s.empty()) throw ParseFail("empty");
  if (s.size() > kMaxNormalized) throw ParseFail("longer than 400 bytes after normalisation");
  std::string_view v(s);
  std::vector<std::string_view> parts;
  if (v.size() >= 4 && v.substr(0, 2) == "\\{" && v.substr(v.size() - 2) == "\\}" && wraps_whole(v, 2, 2)) {
    if (!split_top(v.substr(2, v.size() - 4), parts)) throw ParseFail("unbalanced brackets");
    p.kind = Parsed::UNORDERED;
    p.open = '{';
    p.close = '}';
    for (auto part : parts) p.items.push_back(parse_item(part));
    return p;
  }
  if (v.size() >= 2 && (v[0] == '(' || v[0] == '[') && (v.back() == ')' || v.back() == ']') && wraps_whole(v, 1, 1)) {
    if (!split_top(v.substr(1, v.size() - 2), parts)) throw ParseFail("unbalanced brackets");
    if (parts.size() >= 2) {
      p.kind = Parsed::ORDERED;
      p.open = v[0];
      p.close = v.back();
      for (auto part : parts) p.items.push_back(parse_item(part));
      return p;
    }
  }
  parts.clear();
  if (!split_top(v, parts)) throw ParseFail("unbalanced brackets");
  if (parts.size() >= 2) {
    p.kind = Parsed::UNORDERED;
    for (auto part : parts) p.items.push_back(parse_item(part));
    return p;
  }
  try {
    p.items.push_back(parse_item(v));
    p.kind = Parsed::EXPR;
  } catch (const ParseFail&) {
    if (!plain_words(s)) throw;
    p.kind = Parsed::TEXT;
    p.text = lower_collapsed(s);
  }
  return p;
}

bool numerically_close(const ex& a, const ex& b, double tol) {
  ex fa = GiNaC::evalf(a), fb = GiNaC::evalf(b);
  if (!GiNaC::is_a<numeric>(fa) || !GiNaC::is_a<numeric>(fb)) return false;
  const numeric na = GiNaC::ex_to<numeric>(fa), nb = GiNaC::ex_to<numeric>(fb);
  const numeric diff = GiNaC::abs(na - nb);
  const numeric scale = std::max(GiNaC::abs(na), GiNaC::abs(nb));
  return diff <= numeric(tol) * scale;
}

void collect_symbols(const ex& e, std::map<std::string, GiNaC::symbol>& out) {
  if (GiNaC::is_a<GiNaC::symbol>(e)) {
    const auto& s = GiNaC::ex_to<GiNaC::symbol>(e);
    if (s.get_name() != "\\infty") out.emplace(s.get_name(), s);
    return;
  }
  for (size_t i = 0; i < e.nops(); ++i) collect_symbols(e.op(i), out);
}

// A value in [0.6, 2.6) for a symbol at one test point, fixed by the name (FNV-1a), so both sides
// of a comparison see the same value for the same symbol.
numeric test_value(const std::string& name, int point) {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(point) * 0x9E3779B97F4A7C15ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return numeric(0.6 + static_cast<double>(h % 1000003) / 500001.5);
}

// Symbolic equality by evaluation at three test points (Schwartz-Zippel style) instead of expand()
// or normal(), whose cost explodes on inputs like (a+b+c+d+e+f)^64; numbers are compared directly.
bool ex_equal(const ex& a, const ex& b, double tol) {
  if ((a - b).is_zero()) return true;
  std::map<std::string, GiNaC::symbol> syms;
  collect_symbols(a, syms);
  collect_symbols(b, syms);
  if (syms.empty()) return numerically_close(a, b, tol);
  const double point_tol = std::max(tol, 1e-9);
  for (int point = 0; point < 3; ++point) {
    GiNaC::exmap values;
    for (const auto& [name, sym] : syms) values[sym] = test_value(name, point);
    if (!numerically_close(a.subs(values), b.subs(values), point_tol)) return false;
  }
  return true;
}

bool items_equal(const std::vector<ex>& a, const std::vector<ex>& b, bool ordered, double tol) {
  if (a.size() != b.size()) return false;
  if (ordered) {
    for (size_t i = 0; i < a.size(); ++i)
      if (!ex_equal(a[i], b[i], tol)) return false;
    return true;
  }
  std::vector<bool> used(b.size(), false);
  for (const auto& x : a) {
    bool found = false;
    for (size_t j = 0; j < b.size() && !found; ++j)
      if (!used[j] && ex_equal(x, b[j], tol)) used[j] = found = true;
    if (!found) return false;
  }
  return true;
}

bool parsed_equal(const Parsed& a, const Parsed& b, double tol) {
  if (a.kind != b.kind || a.open != b.open || a.close != b.close) return false;
  if (a.kind == Parsed::TEXT) return a.text == b.text;
  return items_equal(a.items, b.items, a.kind != Parsed::UNORDERED, tol);
}

Parsed scaled(Parsed p, const numeric& factor) {
  for (auto& x : p.items) x = x * factor;
  return p;
}

}  // namespace

const char* to_string(MathMatch m) {
  switch (m) {
    case MathMatch::EQUAL: return "equal";
    case MathMatch::NOT_EQUAL: return "not_equal";
    case MathMatch::UNPARSEABLE_ANSWER: return "unparseable_answer";
    case MathMatch::UNPARSEABLE_REFERENCE: return "unparseable_reference";
  }
  return "?";
}

std::string normalize_math_text(std::string_view text, bool* percent) { return normalize(text, percent); }

MathMatch compare_math_answers(std::string_view answer, std::string_view reference, double rel_tolerance,
                               std::string* detail) {
  std::lock_guard<std::mutex> lock(ginac_mutex());
  symbols().clear_if_large();  // between comparisons no expression refers to the table
  try {
    Parsed ref;
    try {
      ref = parse_answer(reference);
    } catch (const std::exception& e) {
      if (detail) *detail = e.what();
      return MathMatch::UNPARSEABLE_REFERENCE;
    }
    Parsed ans;
    try {
      ans = parse_answer(answer);
    } catch (const std::exception& e) {
      if (detail) *detail = e.what();
      return MathMatch::UNPARSEABLE_ANSWER;
    }
    bool eq = parsed_equal(ans, ref, rel_tolerance);
    // 50% equals both 50 and 0.5.
    if (!eq && ans.percent && ans.kind != Parsed::TEXT) eq = parsed_equal(scaled(ans, numeric(1, 100)), ref, rel_tolerance);
    if (!eq && ref.percent && ref.kind != Parsed::TEXT) eq = parsed_equal(ans, scaled(ref, numeric(1, 100)), rel_tolerance);
    return eq ? MathMatch::EQUAL : MathMatch::NOT_EQUAL;
  } catch (const std::exception& e) {
    // GiNaC may still refuse something during comparison (e.g. a pole): never equal.
    if (detail) *detail = e.what();
    return MathMatch::NOT_EQUAL;
  }
}

}  // namespace grpo::reward
