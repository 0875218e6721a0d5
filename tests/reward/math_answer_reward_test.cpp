// Table-driven cases for the `math_answer` reward. Each expected reward was decided by hand from
// the mathematics (is the extracted final answer the same object as the reference?) and the
// documented extraction rules (last candidate wins; only text after </think> counts).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "grpo/reward/math_answer_reward.h"
#include "grpo/reward/math_equivalence.h"
#include "grpo/util/error.h"

namespace grpo::reward {
namespace {

using nlohmann::json;

struct MathCase {
  const char* name;
  std::string completion;
  json reference;  // the "answer" field; json() (null) means the field is absent
  float expected;
  bool problem = false;  // the row must be reported (bad reference)
};

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

const std::vector<MathCase>& cases() {
  static const std::vector<MathCase> c = {
      // --- extraction
      {"boxed_basic", "\\boxed{42}", "42", 1},
      {"boxed_in_sentence_int_reference", "The result is \\boxed{42}.", 42, 1},
      {"two_boxed_last_wins", "\\boxed{41} wait, no: \\boxed{42}", "42", 1},
      {"two_boxed_first_is_not_used", "\\boxed{42} hmm, actually \\boxed{41}", "42", 0},
      {"boxed_nested_frac", "\\boxed{\\frac{1}{2}}", "0.5", 1},
      {"boxed_nested_sqrt_in_frac", "\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", 1},
      {"boxed_nested_groups", "\\boxed{{1}+{2}}", "3", 1},
      {"boxed_escaped_braces", "\\boxed{\\{1,2\\}}", "\\{2,1\\}", 1},
      {"fbox", "\\fbox{7}", "7", 1},
      {"boxed_without_braces", "so \\boxed 7", "7", 1},
      {"boxed_in_dollars", "$\\boxed{7}$", "7", 1},
      {"answer_tag", "<answer>7</answer>", "7", 1},
      {"think_then_answer_tag", "<think>long\nreasoning\nover lines</think>\n<answer>7</answer>", "7", 1},
      {"answer_only_in_think", "<think>the answer is 7</think>", "7", 0},
      {"boxed_only_in_think", "<think>\\boxed{7}</think><answer>8</answer>", "7", 0},
      {"boxed_in_think_and_after", "<think>\\boxed{7}</think>\nSo we get \\boxed{7}", "7", 1},
      {"unclosed_think", "<think>I think \\boxed{7}", "7", 0},
      {"gsm8k_hashes", "#### 72", "72", 1},
      {"gsm8k_hashes_after_work", "Natalia sold 48/2 = 24 clips in May.\nIn total 48+24 = 72.\n#### 72", "72", 1},
      {"the_answer_is", "The answer is 72.", 72, 1},
      {"the_answer_is_colon", "So the answer is: 72", "72", 1},
      {"final_answer_colon", "Final Answer: 72", "72", 1},
      {"final_answer_boxed_sentence", "The final answer is $\\boxed{72}$. I hope it is correct.", "72", 1},
      {"answer_is_twice_last_wins", "The answer is 5. But wait, recheck: the answer is 6.", "6", 1},
      {"answer_is_twice_first_not_used", "The answer is 5. But wait, recheck: the answer is 6.", "5", 0},
      {"empty_completion", "", "5", 0},
      {"bare_number", "42", "42", 1},
      {"bare_words", "I don't know", "42", 0},
      {"empty_boxed", "\\boxed{}", "5", 0},
      {"unclosed_boxed", "\\boxed{5", "5", 0},
      {"boxed_inside_answer_tag", "<answer>\\boxed{9}</answer>", "9", 1},
      {"answer_is_inside_answer_tag", "<answer>The answer is 9</answer>", "9", 1},
      {"answer_tag_after_boxed_wins", "\\boxed{9}\n<answer>8</answer>", "8", 1},
      {"hashes_then_boxed", "#### 3\nactually \\boxed{4}", "4", 1},
      {"final_answer_bold", "Final Answer: **7**", "7", 1},
      {"answer_is_latex_fraction", "The answer is $\\frac{7}{2}$.", "3.5", 1},
      {"no_candidate_long_text", "We computed many things and\nnever said what came out", "5", 0},
      // --- integers, separators
      {"thousands_comma_answer", "\\boxed{1,000}", "1000", 1},
      {"thousands_comma_reference", "\\boxed{1000}", "1,000", 1},
      {"thousands_latex_comma", "\\boxed{1{,}000}", 1000, 1},
      {"thousands_thin_space", "\\boxed{1\\,000}", 1000, 1},
      {"thousands_plain_space", "\\boxed{1 000}", 1000, 1},
      {"thousands_millions", "\\boxed{1,234,567}", 1234567, 1},
      {"thousands_with_decimals", "\\boxed{1,234.5}", "1234.5", 1},
      {"not_thousands_two_digits", "\\boxed{12,34}", 1234, 0},
      {"comma_space_is_a_list", "\\boxed{1, 000}", 1000, 0},
      {"leading_zeros", "\\boxed{005}", 5, 1},
      {"zero", "\\boxed{0}", "0", 1},
      {"zero_decimal", "\\boxed{0.0}", 0, 1},
      {"tiny_is_not_zero", "\\boxed{1e-20}", 0, 0},
      {"negative", "\\boxed{-5}", "-5", 1},
      {"negative_vs_positive", "\\boxed{-5}", "5", 0},
      {"unicode_minus", "\\boxed{\u22125}", -5, 1},
      {"integer_off_by_one", "\\boxed{1001}", 1000, 0},
      {"integer_decimal_point_zero", "\\boxed{5.0}", "5", 1},
      {"trailing_period", "\\boxed{42.}", "42", 1},
      {"spaces_inside_box", "\\boxed{ 42 }", "42", 1},
      // --- fractions, decimals
      {"decimal_vs_slash_fraction", "\\boxed{0.5}", "1/2", 1},
      {"slash_vs_frac", "\\boxed{1/2}", "\\frac{1}{2}", 1},
      {"dfrac", "\\boxed{\\dfrac{1}{2}}", "0.5", 1},
      {"tfrac_short", "\\boxed{\\tfrac12}", "1/2", 1},
      {"frac_short_float_reference", "\\boxed{\\frac12}", 0.5, 1},
      {"leading_dot_decimal", "\\boxed{.5}", "0.5", 1},
      {"trailing_zero_decimal", "\\boxed{0.50}", "0.5", 1},
      {"unreduced_fraction", "\\boxed{2/4}", "1/2", 1},
      {"third_rounded_too_coarse", "\\boxed{0.333}", "1/3", 0},
      {"third_within_tolerance", "\\boxed{0.3333333}", "\\frac{1}{3}", 1},
      {"negative_frac", "\\boxed{-\\frac{3}{4}}", "-0.75", 1},
      {"frac_negative_numerator", "\\boxed{\\frac{-3}{4}}", "-3/4", 1},
      {"fraction_vs_wrong_fraction", "\\boxed{\\frac{3}{4}}", "\\frac{4}{3}", 0},
      {"cfrac", "\\boxed{\\cfrac{2}{3}}", "2/3", 1},
      {"mixed_sign_fraction", "\\boxed{\\frac{1}{-2}}", "-0.5", 1},
      // --- percentages
      {"percent_vs_number", "\\boxed{50\\%}", "50", 1},
      {"percent_vs_fraction", "\\boxed{50\\%}", "0.5", 1},
      {"percent_vs_wrong", "\\boxed{50\\%}", "5", 0},
      {"fraction_vs_percent_reference", "\\boxed{0.5}", "50%", 1},
      {"decimal_percent", "\\boxed{12.5%}", "12.5", 1},
      {"percent_word_free", "The answer is 20%.", "0.2", 1},
      // --- scientific notation
      {"sci_e", "\\boxed{1.5e3}", "1500", 1},
      {"sci_times_ten", "\\boxed{1.5 \\times 10^{3}}", "1500", 1},
      {"sci_negative_exponent", "\\boxed{2.5E-3}", "0.0025", 1},
      {"power_of_ten_negative", "\\boxed{10^{-3}}", "0.001", 1},
      {"sci_avogadro", "\\boxed{6.02 \\times 10^{23}}", "6.02e23", 1},
      {"sci_wrong_exponent", "\\boxed{6.02 \\times 10^{22}}", "6.02e23", 0},
      // --- numeric tolerance
      {"pi_two_decimals_too_coarse", "\\boxed{3.14}", "\\pi", 0},
      {"pi_many_decimals", "\\boxed{3.14159265}", "\\pi", 1},
      {"tiny_relative_difference", "\\boxed{1000.0000001}", 1000, 1},
      {"two_pi_decimal", "\\boxed{2\\pi}", "6.283185307", 1},
      // --- roots and LaTeX wrappers
      {"sqrt_vs_short_sqrt", "\\boxed{\\sqrt{2}}", "\\sqrt2", 1},
      {"two_sqrt_two_vs_sqrt_eight", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1},
      {"sqrt_vs_decimal", "\\boxed{\\sqrt{8}}", "2.8284271247", 1},
      {"cube_root", "\\boxed{\\sqrt[3]{27}}", 3, 1},
      {"rationalised_denominator", "\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", 1},
      {"sqrt_wrong", "\\boxed{\\sqrt{3}}", "\\sqrt{2}", 0},
      {"text_with_unit", "\\boxed{\\text{5 apples}}", 5, 1},
      {"number_with_text_unit", "\\boxed{5\\text{ cm}}", 5, 1},
      {"dollar_amount", "\\boxed{\\$12.50}", "12.5", 1},
      {"unit_words", "\\boxed{10 square feet}", 10, 1},
      {"unit_after_decimal", "\\boxed{3.5 \\text{ hours}}", "3.5", 1},
      {"pi_with_space_not_a_unit", "\\boxed{2 \\pi}", "2\\pi", 1},
      {"pi_word_not_a_unit", "\\boxed{10 pi}", "10\\pi", 1},
      {"degrees_circ", "\\boxed{90^\\circ}", 90, 1},
      {"degrees_braced", "\\boxed{90^{\\circ}}", "90", 1},
      {"degrees_unicode", "\\boxed{90\u00b0}", "90", 1},
      {"displaystyle", "\\boxed{\\displaystyle\\frac{3}{5}}", "0.6", 1},
      {"mathrm_choice", "\\boxed{\\mathrm{(C)}}", "C", 1},
      {"wrong_choice", "\\boxed{B}", "C", 0},
      {"inline_math_parens", "\\(\\boxed{4}\\)", "4", 1},
      {"left_right_parens_expression", "\\boxed{\\left(\\frac{1}{2}\\right)^{2}}", "0.25", 1},
      {"cdot_product", "\\boxed{3^2 \\cdot 2}", 18, 1},
      {"times_product", "\\boxed{3 \\times 4}", 12, 1},
      {"div", "\\boxed{12 \\div 4}", 3, 1},
      {"absolute_value", "\\boxed{|-3|}", 3, 1},
      {"power", "\\boxed{2^{10}}", 1024, 1},
      {"factorial", "\\boxed{5!}", 120, 1},
      {"pi_over_two", "\\boxed{\\pi/2}", "\\frac{\\pi}{2}", 1},
      // --- tuples, intervals, sets, lists
      {"tuple_left_right", "\\boxed{\\left( 1, 2 \\right)}", "(1,2)", 1},
      {"tuple_order_matters", "\\boxed{(1,2)}", "(2,1)", 0},
      {"tuple_fraction_elements", "\\boxed{(\\frac{1}{2}, 0.25)}", "(0.5, 1/4)", 1},
      {"tuple_length_differs", "\\boxed{(1,2,3)}", "(1,2)", 0},
      {"interval_half_open", "\\boxed{[0, 1)}", "[0,1)", 1},
      {"interval_closed_vs_half_open", "\\boxed{[0, 1]}", "[0,1)", 0},
      {"interval_infinity", "\\boxed{(-\\infty, 3]}", "(-\\infty,3]", 1},
      {"interval_infinity_wrong_bracket", "\\boxed{(-\\infty, 3)}", "(-\\infty,3]", 0},
      {"interval_left_right_brackets", "\\boxed{\\left[ 2, 5 \\right]}", "[2,5]", 1},
      {"set_unordered", "\\boxed{\\{1, 2, 3\\}}", "\\{3,2,1\\}", 1},
      {"list_unordered", "\\boxed{1, 2}", "2, 1", 1},
      {"list_wrong_element", "\\boxed{1, 2}", "1, 3", 0},
      {"tuple_vs_list", "\\boxed{(1, 2)}", "1, 2", 0},
      {"list_of_fractions", "\\boxed{\\frac{1}{2}, \\frac{1}{3}}", "1/3, 1/2", 1},
      {"infinity", "\\boxed{\\infty}", "\\infty", 1},
      {"minus_infinity_vs_infinity", "\\boxed{-\\infty}", "\\infty", 0},
      // --- expressions and variables
      {"equation_answer", "\\boxed{x = 5}", 5, 1},
      {"equation_reference", "\\boxed{5}", "x=5", 1},
      {"expanded_square", "\\boxed{x^2+2x+1}", "(x+1)^2", 1},
      {"commuted_sum", "\\boxed{2x+1}", "1+2x", 1},
      {"different_variable", "\\boxed{2x}", "2y", 0},
      {"half_x", "\\boxed{\\frac{x}{2}}", "0.5x", 1},
      {"greek_symbol", "\\boxed{\\alpha + 1}", "1+\\alpha", 1},
      {"subscripts", "\\boxed{a_1 + a_2}", "a_{2}+a_{1}", 1},
      {"wrong_polynomial", "\\boxed{x^2+1}", "(x+1)^2", 0},
      {"equations_in_list", "\\boxed{x = 5, y = 3}", "x=5, y=3", 1},
      {"equations_in_list_wrong", "\\boxed{x = 5, y = 4}", "x=5, y=3", 0},
      {"function_rhs", "\\boxed{f(x) = 3x - 2}", "3x-2", 1},
      {"rational_function", "\\boxed{\\frac{x^2-1}{x-1}}", "x+1", 1},
      // --- words
      {"text_yes", "\\boxed{\\text{Yes}}", "yes", 1},
      {"text_no_vs_yes", "\\boxed{No}", "yes", 0},
      {"text_city", "\\boxed{Paris}", "paris", 1},
      // --- references in dataset formats
      {"reference_gsm8k_solution", "\\boxed{72}", "Natalia sold 48/2 = 24 clips in May.\n#### 72", 1},
      {"reference_math_solution", "<answer>0.25</answer>", "so the answer is $\\boxed{\\frac{1}{4}}$.", 1},
      {"reference_json_integer", "#### 72", 72, 1},
      {"reference_json_float", "\\boxed{1/4}", 0.25, 1},
      {"reference_boxed", "\\boxed{3}", "\\boxed{3}", 1},
      {"reference_third_vs_two_decimals", "\\boxed{0.33}", "1/3", 0},
      // --- unparseable or missing references: 0 and reported, never 1
      {"reference_unclosed_frac", "\\boxed{1}", "\\frac{1}{", 0, true},
      {"reference_empty", "\\boxed{1}", "", 0, true},
      {"reference_null", "\\boxed{1}", json(nullptr), 0, true},
      {"reference_array", "\\boxed{1}", json::array({1, 2}), 0, true},
      {"reference_braces", "\\boxed{1}", "}{", 0, true},
      {"reference_dangling_operator", "\\boxed{5}", "5 +", 0, true},
      {"reference_huge_symbolic_power", "\\boxed{(x+1)^{1000}}", "(x+1)^{1000}", 0, true},
      {"reference_unparseable_answer_missing", "no answer here at all, none\n", "\\frac{1}{", 0, true},
      {"reference_object", "\\boxed{1}", json::object({{"a", 1}}), 0, true},
      // --- pathological answers: 0, quickly
      {"tower_of_powers_braced", "\\boxed{10^{10^{10}}}", "1", 0},
      {"tower_of_powers_plain", "\\boxed{10^10^10}", "10", 0},
      {"huge_power", "\\boxed{2^{100000}}", "1", 0},
      {"huge_factorial", "\\boxed{9999999!}", "1", 0},
      {"deep_nesting", "\\boxed{" + repeat("(", 100) + "1" + repeat(")", 100) + "}", "1", 0},
      {"long_number", "\\boxed{" + repeat("9", 5000) + "}", "9", 0},
      {"division_by_zero", "\\boxed{1/0}", "1", 0},
      {"zero_to_negative_power", "\\boxed{0^{-1}}", "1", 0},
      {"huge_multinomial_different_power", "\\boxed{(a+b+c+d+e+f+g+h)^{60}}", "(h+g+f+e+d+c+b+a)^{59}", 0},
      {"huge_multinomial_same", "\\boxed{(a+b+c+d+e+f+g+h)^{60}}", "(h+g+f+e+d+c+b+a)^{60}", 1},
      {"megabyte_then_answer", repeat("a", 1000000) + "\\boxed{42}", "42", 1},
      {"megabyte_think_then_answer", "<think>" + repeat("x = 1 + 1\n", 100000) + "</think><answer>42</answer>", "42", 1},
      {"megabyte_unclosed_boxes", repeat("\\boxed{", 150000), "42", 0},
      {"megabyte_unclosed_answer_tags", repeat("<answer>", 130000) + "</answer>", "42", 0},
      {"megabyte_answer_phrases", repeat("the answer is ", 75000) + "42", "42", 1},
      {"megabyte_hashes", repeat("#### ", 200000) + "42", "42", 1},
  };
  return c;
}

class MathTable : public ::testing::TestWithParam<size_t> {};

TEST_P(MathTable, MatchesHandCheckedValue) {
  const MathCase& c = cases()[GetParam()];
  MathAnswerReward fn{config::MathAnswerParams{}};
  RewardInput in;
  in.completion = c.completion;
  if (!c.reference.is_null() || std::string(c.name) == "reference_null") in.reference["answer"] = c.reference;
  auto t0 = std::chrono::steady_clock::now();
  RewardScores s = fn.score_batch({in});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.values.at(0), c.expected) << c.name << " problem: " << s.problems.at(0);
  EXPECT_EQ(!s.problems.at(0).empty(), c.problem) << c.name << " problem: " << s.problems.at(0);
  EXPECT_EQ(s.masked.at(0), 0);
  // Not a benchmark: a generous bound that only a hang or a quadratic blow-up would exceed.
  EXPECT_LT(seconds, 2.0) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, MathTable, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& info) { return std::string(cases()[info.param].name); });

TEST(MathAnswerReward, MissingReferenceFieldIsReported) {
  MathAnswerReward fn{config::MathAnswerParams{}};
  RewardInput in;
  in.completion = "\\boxed{1}";
  in.reference = {{"solution", "1"}};
  auto s = fn.score_batch({in});
  EXPECT_EQ(s.values[0], 0.0f);
  EXPECT_NE(s.problems[0].find("'answer' is missing"), std::string::npos) << s.problems[0];
}

TEST(MathAnswerReward, ConfiguredReferenceFieldAndTolerance) {
  config::MathAnswerParams p;
  p.reference_field = "solution";
  p.tolerance = 0.01;  // |3.14 - pi| / pi = 5.1e-4 < 0.01
  MathAnswerReward fn{p};
  RewardInput in;
  in.completion = "\\boxed{3.14}";
  in.reference = {{"solution", "\\pi"}};
  EXPECT_EQ(fn.score({in}), std::vector<float>{1.0f});
  p.tolerance = 1e-4;  // 5.1e-4 > 1e-4
  EXPECT_EQ(MathAnswerReward{p}.score({in}), std::vector<float>{0.0f});
}

TEST(MathAnswerReward, UserRegexIsACandidateAndLastWins) {
  config::MathAnswerParams p;
  p.answer_regex = R"(ANSWER=(\d+))";
  MathAnswerReward fn{p};
  RewardInput in;
  in.reference = {{"answer", "5"}};
  in.completion = "work... \\boxed{4} then ANSWER=5";
  EXPECT_EQ(fn.score({in})[0], 1.0f);
  in.completion = "work... ANSWER=5 then \\boxed{4}";
  EXPECT_EQ(fn.score({in})[0], 0.0f);
}

TEST(MathAnswerReward, BadUserRegexIsAnInputError) {
  config::MathAnswerParams p;
  p.answer_regex = "(unclosed";
  EXPECT_THROW(MathAnswerReward{p}, InputError);
  p.answer_regex = R"(\d+)";  // no capturing group
  EXPECT_THROW(MathAnswerReward{p}, InputError);
}

TEST(MathAnswerReward, CustomTags) {
  config::MathAnswerParams p;
  p.think_tag = "reasoning";
  p.answer_tag = "final";
  MathAnswerReward fn{p};
  RewardInput in;
  in.reference = {{"answer", "3"}};
  in.completion = "<reasoning>\\boxed{2}</reasoning><final>3</final>";
  EXPECT_EQ(fn.score({in})[0], 1.0f);
  in.completion = "<reasoning>\\boxed{3}</reasoning>";
  EXPECT_EQ(fn.score({in})[0], 0.0f);
}

TEST(MathEquivalence, NormalisationExamples) {
  bool pct = false;
  EXPECT_EQ(normalize_math_text("$\\dfrac{1}{2}$", &pct), "\\frac{1}{2}");
  EXPECT_FALSE(pct);
  EXPECT_EQ(normalize_math_text("1,000", &pct), "1000");
  EXPECT_EQ(normalize_math_text("\\text{50}\\%", &pct), "50");
  EXPECT_TRUE(pct);
  EXPECT_EQ(normalize_math_text("x = 12 cm"), "12");
  EXPECT_EQ(normalize_math_text("\\left( 1, 2 \\right)"), "( 1, 2 )");
}

TEST(MathEquivalence, ReportsWhichSideFailed) {
  EXPECT_EQ(compare_math_answers("1", "\\frac{", 1e-6), MathMatch::UNPARSEABLE_REFERENCE);
  EXPECT_EQ(compare_math_answers("\\frac{", "1", 1e-6), MathMatch::UNPARSEABLE_ANSWER);
  EXPECT_EQ(compare_math_answers("2", "1", 1e-6), MathMatch::NOT_EQUAL);
  EXPECT_EQ(compare_math_answers("1", "1", 1e-6), MathMatch::EQUAL);
}

TEST(AnswerExtraction, CandidatesInOrderAndReferenceText) {
  AnswerExtractor ex;
  auto c = ex.candidates("#### 1\nthe answer is 2\n\\boxed{3}\n<answer>4</answer>");
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].text, "1");
  EXPECT_EQ(c[1].text, "2");
  EXPECT_EQ(c[2].text, "3");
  EXPECT_EQ(c[3].text, "4");
  EXPECT_EQ(c[3].source, "answer_tag");
  EXPECT_EQ(reference_answer_text("blah \\boxed{\\frac{1}{2}} blah"), "\\frac{1}{2}");
  EXPECT_EQ(reference_answer_text("work\n#### 1,000"), "1,000");
  EXPECT_EQ(reference_answer_text("  7 "), "7");
}

}  // namespace
}  // namespace grpo::reward
