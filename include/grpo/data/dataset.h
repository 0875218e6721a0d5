#pragma once
// Prompt datasets: JSONL (one JSON object per line) or a JSON array of objects. Each record keeps
// its whole row, so rewards can read any field (answer, tests, ...) by name; the loader only checks
// the fields it needs itself (the prompt, and the answer when data.answer_field is set).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "grpo/config/train_config.h"

namespace grpo::data {

/// One row of a dataset.
struct Record {
  nlohmann::json row;   // the whole JSON object as read
  std::string file;     // source file
  int64_t line = 0;     // 1-based line where the object starts
  std::string where() const { return file + ":" + std::to_string(line); }
};

/// A loaded dataset in file order.
class Dataset {
 public:
  /// Reads `path`. JSONL unless the first non-blank character is '[' (then a JSON array). A record
  /// is malformed when it is not valid JSON, not an object, lacks cfg.prompt_field (or
  /// cfg.answer_field when that is not empty), or its prompt is neither a string nor a list of
  /// {role, content} objects with string values. With cfg.on_bad_record == ERROR the first malformed
  /// record throws grpo::InputError "file:line: problem"; with SKIP it is skipped and counted in
  /// num_skipped(), and the first few reasons are kept in skipped_reasons(). Blank JSONL lines are
  /// ignored. Throws grpo::InputError when the file cannot be read, or when no record is left.
  static Dataset load(const std::string& path, const config::DataConfig& cfg);

  /// From records already in memory (tests, generated data); each is validated as in load().
  static Dataset from_records(std::vector<Record> records, const config::DataConfig& cfg);

  size_t size() const { return records_.size(); }
  const Record& operator[](size_t i) const { return records_[i]; }
  const std::vector<Record>& records() const { return records_; }
  int64_t num_skipped() const { return num_skipped_; }
  const std::vector<std::string>& skipped_reasons() const { return skipped_reasons_; }

  /// Drops the records whose prompt is longer than max_tokens, measured by `length` (the trainer
  /// passes "render with the chat template, tokenize, count"; data does not know the tokenizer).
  /// Deterministic, so a resumed run recomputes the same dataset. Returns the number dropped (also
  /// added to num_dropped_long()).
  int64_t drop_long_prompts(const std::function<int64_t(const Record&)>& length, int64_t max_tokens);
  int64_t num_dropped_long() const { return num_dropped_long_; }

 private:
  std::vector<Record> records_;
  int64_t num_skipped_ = 0;
  int64_t num_dropped_long_ = 0;
  std::vector<std::string> skipped_reasons_;
};

/// Why `row` is not a usable record under cfg ("missing field 'prompt'", ...), or "" when it is.
std::string record_problem(const nlohmann::json& row, const config::DataConfig& cfg);

}  // namespace grpo::data
