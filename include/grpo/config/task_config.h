#pragma once
// task: the built-in reasoning tasks that `grpo data` generates (train + held-out splits as JSONL).
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class TaskName { NONE, ARITHMETIC, COUNTDOWN, GSM8K, HUMANEVAL, WORD_PROBLEMS };
template <> struct EnumNames<TaskName> {
  static constexpr std::pair<TaskName, std::string_view> items[] = {{TaskName::NONE, "none"},
                                                                    {TaskName::ARITHMETIC, "arithmetic"},
                                                                    {TaskName::COUNTDOWN, "countdown"},
                                                                    {TaskName::GSM8K, "gsm8k"},
                                                                    {TaskName::HUMANEVAL, "humaneval"},
                                                                    {TaskName::WORD_PROBLEMS, "word_problems"}};
};

enum class ArithmeticAnswer { NUMBER, PYTHON };
template <> struct EnumNames<ArithmeticAnswer> {
  static constexpr std::pair<ArithmeticAnswer, std::string_view> items[] = {{ArithmeticAnswer::NUMBER, "number"},
                                                                            {ArithmeticAnswer::PYTHON, "python"}};
};

struct ArithmeticTaskConfig {
  int min_digits = 1;
  int max_digits = 2;
  std::vector<std::string> operations = {"+"};
  ArithmeticAnswer answer_format = ArithmeticAnswer::NUMBER;
  double tool_fraction = 0.0;  // share of `solution`s that compute with the python tool (rollout.tools)
  template <class V> void visit(V& v) {
    v("min_digits", min_digits, "Fewest digits of an operand.", between(1, 9));
    v("max_digits", max_digits, "Most digits of an operand.", between(1, 9));
    v("operations", operations, "Operations drawn uniformly: any of +, -, *.");
    v("answer_format", answer_format, "number: the answer is the value (math_answer reward); python: the answer is a ```python program printing it, with a stdin/stdout test in the row's `tests` field (code reward, run in the sandbox).");
    v("tool_fraction", tool_fraction, "answer_format number: this share of the rows' `solution`s (the SFT cold start) compute the value with one python tool call inside <think> (```python print(a op b) ``` and its result as rollout.tools injects it with the default wrapper: \\n<output>\\nvalue\\n</output>\\n) instead of the column trace; 0 = none. The problems themselves do not change.", between(0, 1));
  }
};

struct CountdownTaskConfig {
  int min_numbers = 3;
  int max_numbers = 4;
  int max_number = 99;   // numbers drawn from [1, max_number]
  int min_target = 1;
  int max_target = 100;
  template <class V> void visit(V& v) {
    v("min_numbers", min_numbers, "Fewest numbers per problem.", between(2, 6));
    v("max_numbers", max_numbers, "Most numbers per problem.", between(2, 6));
    v("max_number", max_number, "Numbers are drawn from 1..max_number.", between(1, 1000));
    v("min_target", min_target, "Smallest target.", at_least(0));
    v("max_target", max_target, "Largest target.", at_least(1));
  }
};

struct WordProblemsTaskConfig {
  int max_number = 20;  // every number in a problem, its intermediate results and its answer
  template <class V> void visit(V& v) {
    v("max_number", max_number, "Largest number in a problem, in any intermediate result and in the answer (products use factors up to 10).", between(4, 1000000));
  }
};

struct TaskConfig {
  TaskName name = TaskName::NONE;
  int num_train = 2000;
  int num_eval = 200;
  int64_t seed = 1234;
  int tokenizer_vocab_size = 0;  // > 0: train a sentencepiece tokenizer on the task's data
  std::string source;  // gsm8k / humaneval: the converted JSONL from set-up (scripts/fetch_assets.sh)
  ArithmeticTaskConfig arithmetic;
  CountdownTaskConfig countdown;
  WordProblemsTaskConfig word_problems;
  template <class V> void visit(V& v) {
    v("name", name, "Built-in task whose data `grpo data` (and `grpo train` when data files are missing) writes to data.train_file / data.eval_file; none = bring your own files.");
    v("num_train", num_train, "Training examples.", at_least(1));
    v("num_eval", num_eval, "Held-out examples (disjoint from training prompts).", at_least(0));
    v("seed", seed, "Seed of the generator (independent of trainer.seed).");
    v("tokenizer_vocab_size", tokenizer_vocab_size, "When > 0 and tokenizer.path does not exist yet, train a sentencepiece tokenizer of this size on the generated data and write it to tokenizer.path (models trained from scratch).", at_least(0));
    v("source", source, "gsm8k / humaneval: JSONL converted at set-up time; empty = the default under ~/.cache/grpo/data.");
    v("arithmetic", arithmetic, "Parameters of the arithmetic task.");
    v("countdown", countdown, "Parameters of the countdown task.");
    v("word_problems", word_problems, "Parameters of the word_problems task (36 English templates; every third one only in the held-out split).");
  }
};

}  // namespace grpo::config
