#pragma once
// Built-in reasoning tasks, generated in C++ from a seed: each example is a JSON row with the
// prompt, the fields its reward reads (answer; nums + target), and a worked `solution` in the R1
// format ("<think>...</think>\n<answer>...</answer>") that the cold-start SFT trains on.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "grpo/config/task_config.h"

namespace grpo::data {

/// Instruction appended to every generated prompt (R1-Zero's template, shortened).
extern const char* const kR1Instruction;
/// The same for answers that are programs (arithmetic with answer_format: python).
extern const char* const kR1ProgramInstruction;

/// `n` arithmetic problems ("What is 47 + 8?") with answer and a digit-by-digit solution trace.
/// With answer_format python the answer is a ```python program printing the value, and the row
/// carries `tests` = [{input: "", output: value}] for the code reward.
/// Deterministic in (cfg, n, seed) on every platform. Throws grpo::InputError for an unknown
/// operation or min_digits > max_digits.
std::vector<nlohmann::json> make_arithmetic(const config::ArithmeticTaskConfig& cfg, int64_t n, uint64_t seed);

/// `n` countdown problems (TinyZero): numbers, a target reachable with + - * / using each number
/// exactly once (solvability checked by exhaustive search), and one solution. Deterministic.
std::vector<nlohmann::json> make_countdown(const config::CountdownTaskConfig& cfg, int64_t n, uint64_t seed);

/// An expression using every number of `nums` exactly once with + - * / and parentheses that
/// evaluates exactly (rational arithmetic) to `target`, or nullopt. Exhaustive over combination
/// orders: fine for up to 6 numbers.
std::optional<std::string> solve_countdown(const std::vector<int64_t>& nums, int64_t target);

/// `n` one- and two-step arithmetic word problems in English ("Tom has 7 apples. He buys 5
/// more. ...") from 36 templates (sums, differences, a + b + c, a - b + c, a x b), names and
/// objects as slots, all numbers and results in [0, cfg.max_number]. heldout = true draws only from
/// the held-out templates (word_problem_template_heldout), false only from the others. Rows carry
/// `group` = the template. Deterministic in (cfg, n, seed, heldout). Throws grpo::InputError for
/// max_number < 4.
std::vector<nlohmann::json> make_word_problems(const config::WordProblemsTaskConfig& cfg, int64_t n, uint64_t seed,
                                               bool heldout);
/// Whether template `template_index` of the word_problems task belongs to the held-out split: one in
/// three, staggered so that every operation (+, -, two steps, x) has templates in both splits.
bool word_problem_template_heldout(int template_index);

/// Text put before a HumanEval prompt's code: asks for the whole function in a ```python block.
extern const char* const kCodeInstruction;

/// Where scripts/fetch_assets.sh writes a converted dataset (docs/datasets.md):
/// $GRPO_DATA_DIR, else $GRPO_CACHE_DIR/data, else $XDG_CACHE_HOME/grpo/data, else
/// ~/.cache/grpo/data; then gsm8k/gsm8k.jsonl or humaneval/humaneval.jsonl. "" for other tasks.
std::string default_task_source(config::TaskName name);

/// Generates the task's train and held-out splits (held-out prompts never appear in train) and
/// writes them as JSONL, atomically.
/// - arithmetic, countdown: generated from task.seed.
/// - gsm8k, humaneval: read from task.source (default: default_task_source()) and split with
///   task.seed: whole groups (row field "group", a GSM-Symbolic template; else the prompt) go to
///   the held-out side, then num_train rows are drawn from the rest. GSM8K rows get the R1 prompt
///   (question + kR1Instruction) and an R1 `solution`; HumanEval rows get kCodeInstruction + the
///   code prompt in a ```python block, and keep `tests` for the `code` reward.
/// Throws grpo::InputError for task none; when the task's parameter space or source is too small
/// for the requested counts; when the source is missing (naming scripts/setup.sh) or a row is
/// malformed (naming file:line and the missing field).
void write_task_splits(const config::TaskConfig& task, const std::string& train_path, const std::string& eval_path);

}  // namespace grpo::data
