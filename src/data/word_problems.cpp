// Arithmetic word problems in plain English, generated from templates (GSM-Symbolic style: a
// template with a name, an object and numbers as slots). Every third template is held out, so
// the held-out split measures a skill, not the memory of a sentence (tasks.h).
#include <random>
#include <string>
#include <vector>

#include "grpo/data/tasks.h"
#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::data {
namespace {

enum class Op { ADD, SUB, ADD3, SUB_ADD, MUL };

struct Template {
  Op op;
  const char* text;  // {N} name, {P} he/she, {X} plural object, {A} {B} {C} numbers
};

// 36 templates: 12 each of sums, differences and two-step problems (a + b + c, a - b + c, a x b).
// Index % 3 == 2 is held out (heldout_template()).
constexpr Template kTemplates[] = {
    {Op::ADD, "{N} has {A} {X}. {P} buys {B} more. How many {X} does {N} have now?"},
    {Op::SUB, "{N} had {A} {X} and gave {B} of them to a friend. How many {X} does {N} have left?"},
    {Op::ADD3, "{N} picked {A} {X} on Monday, {B} on Tuesday and {C} on Wednesday. How many {X} did {N} pick in total?"},
    {Op::ADD, "There are {A} {X} in a box. {N} puts {B} more {X} in the box. How many {X} are in the box?"},
    {Op::SUB, "A shelf holds {A} {X}. {N} takes {B} {X} off the shelf. How many {X} are still on the shelf?"},
    {Op::SUB_ADD, "{N} had {A} {X}. {P} lost {B} of them and then found {C}. How many {X} does {N} have now?"},
    {Op::ADD, "{N} found {A} {X} in the garden and {B} {X} in the kitchen. How many {X} did {N} find?"},
    {Op::SUB, "{N} baked {A} {X} and the family ate {B} of them. How many {X} are left?"},
    {Op::MUL, "{N} has {A} bags with {B} {X} in each bag. How many {X} does {N} have?"},
    {Op::ADD, "A class collected {A} {X} last week and {B} {X} this week. How many {X} did the class collect?"},
    {Op::SUB, "{N} needs {A} {X} for a project and already has {B}. How many more {X} does {N} need?"},
    {Op::ADD3, "{N} counted {A} red {X}, {B} blue {X} and {C} green {X}. How many {X} did {N} count?"},
    {Op::ADD, "{N} read {A} pages in the morning and {B} pages in the evening. How many pages did {N} read that day?"},
    {Op::SUB, "A bus had {A} passengers. At the stop, {B} passengers got off. How many passengers are on the bus now?"},
    {Op::SUB_ADD, "A basket had {A} {X}. {N} sold {B} of them and then added {C} more. How many {X} are in the basket?"},
    {Op::ADD, "{N} scored {A} points in the first game and {B} points in the second game. How many points did {N} score in all?"},
    {Op::SUB, "{N} is {A} years old. {P} was {B} years younger when {P} started school. How old was {N} then?"},
    {Op::MUL, "Each box holds {B} {X}. {N} fills {A} boxes. How many {X} are in the boxes?"},
    {Op::ADD, "{N} saved {A} dollars in May and {B} dollars in June. How many dollars did {N} save in those two months?"},
    {Op::SUB, "{N} had {A} dollars and spent {B} dollars on {X}. How many dollars does {N} have left?"},
    {Op::ADD3, "On a trip {N} saw {A} {X} in the morning, {B} at noon and {C} in the evening. How many {X} did {N} see?"},
    {Op::ADD, "A farmer has {A} cows and {B} sheep. How many animals does the farmer have?"},
    {Op::SUB, "A tree had {A} {X} on it. The wind blew {B} of them away. How many {X} are left on the tree?"},
    {Op::SUB_ADD, "{N} had {A} stickers, gave {B} to a sister and got {C} from a friend. How many stickers does {N} have now?"},
    {Op::ADD, "{N} walked {A} miles on Saturday and {B} miles on Sunday. How many miles did {N} walk over the weekend?"},
    {Op::SUB, "A library had {A} books about {X}. It lent out {B} of them. How many of those books are still in the library?"},
    {Op::MUL, "{N} buys {A} packs of {X}. Each pack has {B} {X}. How many {X} does {N} buy?"},
    {Op::ADD, "A jar has {A} marbles. {N} adds {B} marbles. How many marbles are in the jar now?"},
    {Op::SUB, "{N} wants to collect {A} {X}. {P} has {B} so far. How many more {X} does {N} need to collect?"},
    {Op::ADD3, "{N} made {A} {X} on Friday, {B} on Saturday and {C} on Sunday. How many {X} did {N} make?"},
    {Op::ADD, "There were {A} birds on a fence. Then {B} more birds landed on it. How many birds are on the fence?"},
    {Op::SUB, "A pond had {A} ducks. {B} ducks flew away. How many ducks are left in the pond?"},
    {Op::SUB_ADD, "A store had {A} {X}. It sold {B} and received a delivery of {C}. How many {X} does the store have now?"},
    {Op::ADD, "{N} has {A} {X} and {N}'s cousin has {B} {X}. How many {X} do they have together?"},
    {Op::SUB, "A rope is {A} meters long. {N} cuts off {B} meters. How long is the rest of the rope, in meters?"},
    {Op::MUL, "A garden has {A} rows with {B} plants in each row. How many plants are in the garden?"},
};
constexpr int kNumTemplates = static_cast<int>(sizeof(kTemplates) / sizeof(kTemplates[0]));

constexpr const char* kNames[] = {"Tom", "Anna", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Ben", "Lily",
                                  "Omar", "Zoe", "Ravi", "Chloe", "Jack", "Nora", "Sam", "Ella", "Leo", "Grace"};
constexpr bool kIsShe[] = {false, true, false, true, false, true, false, true, false, true,
                           false, true, false, true, false, true, false, true, false, true};
constexpr const char* kObjects[] = {"apples", "pencils", "cookies", "stamps", "shells", "cards", "oranges", "books",
                                    "balloons", "coins", "flowers", "toy cars", "buttons", "candles", "eggs",
                                    "marbles", "ribbons", "beads", "cupcakes", "leaves"};

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // portable, as in tasks.cpp
  uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % span;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return lo + static_cast<int64_t>(x % span);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// Numbers for one template: every intermediate result stays in [0, max]; products use factors
// up to 10 so a 135M model can still know them.
struct Numbers {
  int64_t a, b, c, result;
  std::string trace;
};

Numbers draw_numbers(Op op, int64_t max, std::mt19937_64& rng) {
  Numbers n{};
  auto s = [](int64_t v) { return std::to_string(v); };
  switch (op) {
    case Op::ADD:
      n.a = uniform(rng, 1, max - 1), n.b = uniform(rng, 1, max - n.a), n.result = n.a + n.b;
      n.trace = s(n.a) + " + " + s(n.b) + " = " + s(n.result) + ".";
      break;
    case Op::SUB:
      n.a = uniform(rng, 2, max), n.b = uniform(rng, 1, n.a - 1), n.result = n.a - n.b;
      n.trace = s(n.a) + " - " + s(n.b) + " = " + s(n.result) + ".";
      break;
    case Op::ADD3:
      n.a = uniform(rng, 1, max - 2), n.b = uniform(rng, 1, max - n.a - 1), n.c = uniform(rng, 1, max - n.a - n.b);
      n.result = n.a + n.b + n.c;
      n.trace = s(n.a) + " + " + s(n.b) + " = " + s(n.a + n.b) + ". " + s(n.a + n.b) + " + " + s(n.c) + " = " +
                s(n.result) + ".";
      break;
    case Op::SUB_ADD:
      n.a = uniform(rng, 2, max), n.b = uniform(rng, 1, n.a - 1), n.c = uniform(rng, 1, max - (n.a - n.b));
      n.result = n.a - n.b + n.c;
      n.trace = s(n.a) + " - " + s(n.b) + " = " + s(n.a - n.b) + ". " + s(n.a - n.b) + " + " + s(n.c) + " = " +
                s(n.result) + ".";
      break;
    case Op::MUL:
      n.a = uniform(rng, 2, std::min<int64_t>(10, max / 2)), n.b = uniform(rng, 2, std::min<int64_t>(10, max / n.a));
      n.result = n.a * n.b;
      n.trace = s(n.a) + " x " + s(n.b) + " = " + s(n.result) + ".";
      break;
  }
  return n;
}

}  // namespace

// The templates cycle through the operations in blocks of 9 (ADD, SUB, ADD3, ADD, SUB, SUB_ADD, ADD, SUB,
// MUL): holding out plain every third template would hold out exactly the ADD3, SUB_ADD and MUL ones,
// so training would never see a two-step or a product problem. Shifting the pattern by one per block
// holds out 12 of 36 with every operation on both sides (ADD 9/3, SUB 9/3, ADD3, SUB_ADD, MUL 2/2).
bool word_problem_template_heldout(int template_index) { return (template_index / 9 + template_index % 9) % 3 == 2; }

std::vector<nlohmann::json> make_word_problems(const config::WordProblemsTaskConfig& cfg, int64_t n, uint64_t seed,
                                               bool heldout) {
  GRPO_REQUIRE(cfg.max_number >= 4, "task.word_problems.max_number must be at least 4, got ", cfg.max_number);
  std::vector<int> templates;
  for (int t = 0; t < kNumTemplates; ++t)
    if (word_problem_template_heldout(t) == heldout) templates.push_back(t);
  std::mt19937_64 rng(seed);
  std::vector<nlohmann::json> out;
  out.reserve(static_cast<size_t>(n));
  constexpr int64_t kNumNames = sizeof(kNames) / sizeof(kNames[0]), kNumObjects = sizeof(kObjects) / sizeof(kObjects[0]);
  for (int64_t i = 0; i < n; ++i) {
    int t = templates[size_t(uniform(rng, 0, int64_t(templates.size()) - 1))];
    int64_t who = uniform(rng, 0, kNumNames - 1), what = uniform(rng, 0, kNumObjects - 1);
    Numbers num = draw_numbers(kTemplates[t].op, cfg.max_number, rng);
    std::string q = kTemplates[t].text;
    q = replace_all(q, "{N}", kNames[who]);
    q = replace_all(q, ". {P}", std::string(". ") + (kIsShe[who] ? "She" : "He"));
    q = replace_all(q, "{P}", kIsShe[who] ? "she" : "he");
    q = replace_all(q, "{X}", kObjects[what]);
    q = replace_all(q, "{A}", std::to_string(num.a));
    q = replace_all(q, "{B}", std::to_string(num.b));
    q = replace_all(q, "{C}", std::to_string(num.c));
    out.push_back({{"prompt", q + kR1Instruction},
                   {"question", q},
                   {"answer", std::to_string(num.result)},
                   {"group", "word_problems/" + std::to_string(t)},
                   {"solution", "<think>" + num.trace + "</think>\n<answer>" + std::to_string(num.result) + "</answer>"}});
  }
  return out;
}

}  // namespace grpo::data
