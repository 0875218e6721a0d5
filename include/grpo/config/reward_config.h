#pragma once
// reward: the weighted reward functions and the code sandbox. Each entry of reward.functions names
// its kind and takes only that kind's parameters, flat beside name and weight:
//   reward:
//     functions:
//       - {name: format, weight: 0.2, mode: strict}
//       - {name: math_answer, weight: 1.0, tolerance: 1e-6}
#include <string>
#include <vector>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class RewardKind { FORMAT, MATH_ANSWER, COUNTDOWN, CODE, LANGUAGE_CONSISTENCY, LENGTH, PYTHON, HTTP };
template <> struct EnumNames<RewardKind> {
  static constexpr std::pair<RewardKind, std::string_view> items[] = {
      {RewardKind::FORMAT, "format"},       {RewardKind::MATH_ANSWER, "math_answer"},
      {RewardKind::COUNTDOWN, "countdown"}, {RewardKind::CODE, "code"},
      {RewardKind::LANGUAGE_CONSISTENCY, "language_consistency"}, {RewardKind::LENGTH, "length"},
      {RewardKind::PYTHON, "python"},       {RewardKind::HTTP, "http"}};
};

enum class FormatMode { STRICT, SOFT };
template <> struct EnumNames<FormatMode> {
  static constexpr std::pair<FormatMode, std::string_view> items[] = {{FormatMode::STRICT, "strict"},
                                                                      {FormatMode::SOFT, "soft"}};
};
struct FormatParams {
  FormatMode mode = FormatMode::STRICT;
  std::string think_tag = "think";
  std::string answer_tag = "answer";
  template <class V> void visit(V& v) {
    v("mode", mode, "strict: exactly <think>...</think> then <answer>...</answer>, nothing outside; soft: both present, in order.");
    v("think_tag", think_tag, "Tag name of the reasoning block.");
    v("answer_tag", answer_tag, "Tag name of the answer block.");
  }
};

struct MathAnswerParams {
  double tolerance = 1e-6;  // relative
  std::string answer_regex;  // optional: first capture group is the answer
  std::string reference_field = "answer";
  std::string think_tag = "think";
  std::string answer_tag = "answer";
  int max_completion_bytes = 1 << 20;
  template <class V> void visit(V& v) {
    v("tolerance", tolerance, "Relative tolerance for numeric equality: |a - b| <= tolerance * max(|a|, |b|).", at_least(0));
    v("answer_regex", answer_regex, "Extra RE2 pattern whose first capture group is an answer candidate (last match wins).");
    v("reference_field", reference_field, "Dataset field holding the reference answer.");
    v("think_tag", think_tag, "Reasoning tag: the answer is looked for only after its closing tag.");
    v("answer_tag", answer_tag, "Answer tag whose content is an answer candidate.");
    v("max_completion_bytes", max_completion_bytes, "Only the last this many bytes of a completion are searched for the answer.", at_least(1024));
  }
};

struct CountdownParams {
  std::string numbers_field = "nums";
  std::string target_field = "target";
  double format_score = 0.0;
  std::string think_tag = "think";
  std::string answer_tag = "answer";
  template <class V> void visit(V& v) {
    v("numbers_field", numbers_field, "Dataset field with the list of numbers to use once each.");
    v("target_field", target_field, "Dataset field with the target value.");
    v("format_score", format_score, "Reward of an equation that parses but uses the wrong numbers or misses the target (TinyZero uses 0.1).", between(0, 1));
    v("think_tag", think_tag, "Reasoning tag: the equation is looked for only after its closing tag.");
    v("answer_tag", answer_tag, "Tag holding the equation (the last one counts).");
  }
};

enum class CodeLanguage { PYTHON, CPP };
template <> struct EnumNames<CodeLanguage> {
  static constexpr std::pair<CodeLanguage, std::string_view> items[] = {{CodeLanguage::PYTHON, "python"},
                                                                        {CodeLanguage::CPP, "cpp"}};
};
enum class CodeScoring { FRACTION, ALL_OR_NOTHING };
template <> struct EnumNames<CodeScoring> {
  static constexpr std::pair<CodeScoring, std::string_view> items[] = {{CodeScoring::FRACTION, "fraction"},
                                                                       {CodeScoring::ALL_OR_NOTHING, "all_or_nothing"}};
};
struct CodeParams {
  CodeLanguage language = CodeLanguage::PYTHON;
  CodeScoring scoring = CodeScoring::FRACTION;
  std::string tests_field = "tests";
  template <class V> void visit(V& v) {
    v("language", language, "Language of the fenced code block to extract and run.");
    v("scoring", scoring, "fraction of tests passed, or 1 only when all pass.");
    v("tests_field", tests_field, "Dataset field with the tests: a list of assert statements, or of {input, output} pairs.");
  }
};

enum class ScriptUnit { WORDS, LETTERS };
template <> struct EnumNames<ScriptUnit> {
  static constexpr std::pair<ScriptUnit, std::string_view> items[] = {{ScriptUnit::WORDS, "words"},
                                                                      {ScriptUnit::LETTERS, "letters"}};
};
struct LanguageConsistencyParams {
  std::string script = "latin";
  ScriptUnit unit = ScriptUnit::WORDS;
  std::string think_tag = "think";
  template <class V> void visit(V& v) {
    v("script", script, "Target script of the chain of thought: latin, cjk, cyrillic, arabic, devanagari.");
    v("unit", unit, "Count words (a run of letters of one script, or one CJK character) or letters.");
    v("think_tag", think_tag, "Tag of the chain of thought whose language is measured.");
  }
};

enum class LengthMode { OVERLONG, COSINE };
template <> struct EnumNames<LengthMode> {
  static constexpr std::pair<LengthMode, std::string_view> items[] = {{LengthMode::OVERLONG, "overlong"},
                                                                      {LengthMode::COSINE, "cosine"}};
};
struct LengthParams {
  LengthMode mode = LengthMode::OVERLONG;
  int max_length = 256;      // tokens
  int buffer_length = 64;    // DAPO overlong buffer, tokens
  RewardKind correctness = RewardKind::MATH_ANSWER;
  double correct_short = 2.0;   // Yeo et al. 2025: r_0^c
  double correct_long = 1.0;    // r_L^c
  double wrong_short = -10.0;   // r_0^w
  double wrong_long = 0.0;      // r_L^w
  double exceed = -10.0;        // r_e
  template <class V> void visit(V& v) {
    v("mode", mode, "overlong: DAPO soft overlong punishment; cosine: cosine length scaling.");
    v("max_length", max_length, "overlong: length (tokens) beyond which the punishment is -1; cosine: L_max, the length at which the reward reaches its long end.", at_least(1));
    v("buffer_length", buffer_length, "DAPO buffer: punishment ramps from 0 to -1 over the last buffer_length tokens.", at_least(0));
    v("correctness", correctness, "cosine: the reward kind (math_answer or countdown) deciding correctness; it uses that kind's first entry's parameters.");
    v("correct_short", correct_short, "cosine: reward of a correct completion of length 0 (r_0^c).");
    v("correct_long", correct_long, "cosine: reward of a correct completion of length max_length (r_L^c).");
    v("wrong_short", wrong_short, "cosine: reward of a wrong completion of length 0 (r_0^w).");
    v("wrong_long", wrong_long, "cosine: reward of a wrong completion of length max_length (r_L^w).");
    v("exceed", exceed, "cosine: reward of a completion of max_length tokens or more (r_e).");
  }
};

// `python`: a TRL-style reward function (docs/rewards.md, "Your own reward in Python").
struct PythonParams {
  std::string file;       // the .py file holding the function
  std::string function;   // the function's name in it
  std::string python = "python3";
  double timeout_s = 60.0;  // per batch
  int memory_mb = 4096;     // address space of the worker
  template <class V> void visit(V& v) {
    v("file", file, "Python file defining the reward function (TRL's contract: f(prompts, completions, completion_ids, **columns) -> list of float or None).");
    v("function", function, "Name of the function in `file`; its reward is logged under this name.");
    v("python", python, "Python 3 interpreter of the worker: a name on the sandbox PATH (/usr/local/bin:/usr/bin:/bin) or an absolute path under /usr (e.g. a venv in /usr/local) holding the packages the function imports.");
    v("timeout_s", timeout_s, "Wall-clock limit of one batch (including the import of the file on the worker's first batch); past it the worker is killed and restarted and the batch's rows are masked.", greater_than(0));
    v("memory_mb", memory_mb, "Address-space limit of the worker, MiB.", at_least(64));
  }
};

// `http`: a remote reward endpoint (docs/rewards.md, "A remote reward server").
struct HttpParams {
  std::string url;          // http://host:port/path
  std::string label = "http";
  double timeout_s = 30.0;  // per attempt
  int retries = 2;          // extra attempts after a failed one
  double retry_delay_s = 1.0;
  template <class V> void visit(V& v) {
    v("url", url, "http:// URL the batch is POSTed to as JSON (https is not supported: put a local proxy in front).");
    v("label", label, "Name the reward is logged under.");
    v("timeout_s", timeout_s, "Limit of one attempt (connect, send, reply), seconds.", greater_than(0));
    v("retries", retries, "Further attempts after a failed one (connection refused, timeout, HTTP 5xx, unreadable reply).", at_least(0));
    v("retry_delay_s", retry_delay_s, "Wait before a retry, seconds (doubled each time).", at_least(0));
  }
};

struct RewardFunctionConfig {
  RewardKind name = RewardKind::FORMAT;
  double weight = 1.0;
  FormatParams format;
  MathAnswerParams math_answer;
  CountdownParams countdown;
  CodeParams code;
  LanguageConsistencyParams language_consistency;
  LengthParams length;
  PythonParams python;
  HttpParams http;

  // Only the parameters of the named kind are accepted (and dumped): a `mode:` under math_answer
  // is an unknown key, not silently ignored.
  template <class V> void visit(V& v) {
    v("name", name, "Reward function.");
    v("weight", weight, "Weight in the summed reward.");
    switch (name) {
      case RewardKind::FORMAT: format.visit(v); break;
      case RewardKind::MATH_ANSWER: math_answer.visit(v); break;
      case RewardKind::COUNTDOWN: countdown.visit(v); break;
      case RewardKind::CODE: code.visit(v); break;
      case RewardKind::LANGUAGE_CONSISTENCY: language_consistency.visit(v); break;
      case RewardKind::LENGTH: length.visit(v); break;
      case RewardKind::PYTHON: python.visit(v); break;
      case RewardKind::HTTP: http.visit(v); break;
    }
  }
  template <class V> void document_all(V& v) {
    v("name", name, "Reward function.");
    v("weight", weight, "Weight in the summed reward.");
    v("(format)", format, "Parameters when name is format.");
    v("(math_answer)", math_answer, "Parameters when name is math_answer.");
    v("(countdown)", countdown, "Parameters when name is countdown.");
    v("(code)", code, "Parameters when name is code.");
    v("(language_consistency)", language_consistency, "Parameters when name is language_consistency.");
    v("(length)", length, "Parameters when name is length.");
    v("(python)", python, "Parameters when name is python.");
    v("(http)", http, "Parameters when name is http.");
  }
};

struct SandboxConfig {
  int num_workers = 2;
  double wall_time_s = 10.0;
  double cpu_time_s = 5.0;
  int memory_mb = 512;        // address space
  int max_processes = 32;
  int max_file_size_mb = 16;
  int max_open_files = 64;
  int max_output_bytes = 65536;  // per stream
  std::string python = "python3";
  std::string cxx = "g++";
  double compile_wall_time_s = 30.0;
  double compile_cpu_time_s = 20.0;
  int compile_memory_mb = 2048;
  int work_dir_mb = 64;
  template <class V> void visit(V& v) {
    v("num_workers", num_workers, "Programs run at once.", at_least(1));
    v("wall_time_s", wall_time_s, "Wall-clock limit per program, seconds.", greater_than(0));
    v("cpu_time_s", cpu_time_s, "CPU-time limit per program, seconds.", greater_than(0));
    v("memory_mb", memory_mb, "Address-space limit, MiB.", at_least(16));
    v("max_processes", max_processes, "Processes and threads a program may have.", at_least(1));
    v("max_file_size_mb", max_file_size_mb, "Largest file a program may write, MiB.", at_least(0));
    v("max_open_files", max_open_files, "Open file descriptors.", at_least(4));
    v("max_output_bytes", max_output_bytes, "Captured stdout and stderr, bytes each; the rest is drained and dropped.", at_least(0));
    v("python", python, "Python 3 interpreter used for python programs.");
    v("cxx", cxx, "C++ compiler used for cpp programs.");
    v("compile_wall_time_s", compile_wall_time_s, "Wall-clock limit of compiling a cpp program, seconds.", greater_than(0));
    v("compile_cpu_time_s", compile_cpu_time_s, "CPU-time limit of each compiler process, seconds.", greater_than(0));
    v("compile_memory_mb", compile_memory_mb, "Address-space limit of each compiler process, MiB.", at_least(64));
    v("work_dir_mb", work_dir_mb, "Size of the private tmpfs work directory (all files a run writes), MiB.", at_least(1));
  }
};

struct RewardConfig {
  std::vector<RewardFunctionConfig> functions;
  SandboxConfig sandbox;
  template <class V> void visit(V& v) {
    v("functions", functions, "Reward functions; the reward is their weighted sum.");
    v("sandbox", sandbox, "Limits of the sandbox that runs code for the code reward.");
  }
};

}  // namespace grpo::config
