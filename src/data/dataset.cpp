#include "grpo/data/dataset.h"

#include <algorithm>

#include "grpo/data/escape.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"

namespace grpo::data {
namespace {

using nlohmann::json;

constexpr size_t kMaxReasonsKept = 20;

std::string type_name(const json& j) { return j.type_name(); }

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 5: "
// prefix (the line is ours to report).
std::string short_parse_error(const json::parse_error& e) {
  std::string w = escape_for_terminal(e.what());
  auto p = w.find(": ");
  if (w.rfind("[json.exception", 0) == 0 && p != std::string::npos) {
    auto q = w.find(": ", p + 2);  // after "parse error at line L, column C"
    if (q != std::string::npos && w.compare(p + 2, 11, "parse error") == 0) return w.substr(q + 2);
    return w.substr(p + 2);
  }
  return w;
}

// One top-level element of a JSON array: its text and the line it starts on.
struct Piece {
  std::string text;
  int64_t line;
};

// Splits the text of a JSON array into its elements without parsing them, so each element can be
// parsed on its own and its errors reported at its own line. Tracks strings (with escapes) and
// nesting depth. Throws "file:line: ..." when the array itself is not closed.
std::vector<Piece> split_array(const std::string& text, const std::string& file) {
  std::vector<Piece> out;
  size_t i = text.find('[');
  int64_t line = 1;
  for (size_t k = 0; k < i; ++k) line += text[k] == '\n';
  ++i;
  int depth = 0;
  bool in_str = false, esc = false;
  size_t start = std::string::npos;
  int64_t start_line = line;
  auto flush = [&](size_t end) {
    if (start == std::string::npos) return;
    std::string piece = text.substr(start, end - start);
    // Trim trailing whitespace; leading whitespace was skipped when start was set.
    while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece.back()))) piece.pop_back();
    out.push_back({std::move(piece), start_line});
    start = std::string::npos;
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (start == std::string::npos && !std::isspace(static_cast<unsigned char>(c)) && !(depth == 0 && (c == ',' || c == ']'))) {
      start = i;
      start_line = line;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') {
      if (depth == 0) {  // the closing ']' of the array
        flush(i);
        for (size_t k = i + 1; k < text.size(); ++k) {
          if (text[k] == '\n') ++line;
          else if (!std::isspace(static_cast<unsigned char>(text[k])))
            throw InputError(str(file, ":", line, ": unexpected text after the closing ']' of the JSON array"));
        }
        return out;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      flush(i);
    }
  }
  throw InputError(str(file, ":", line, ": the JSON array is not closed (missing ']')"));
}

}  // namespace

std::string record_problem(const json& row, const config::DataConfig& cfg) {
  if (!row.is_object()) return str("expected a JSON object, got ", type_name(row));
  auto it = row.find(cfg.prompt_field);
  if (it == row.end()) return str("missing field '", cfg.prompt_field, "' (data.prompt_field)");
  const json& p = *it;
  if (p.is_array()) {
    if (p.empty()) return str("field '", cfg.prompt_field, "' is an empty message list");
    for (size_t k = 0; k < p.size(); ++k) {
      const json& m = p[k];
      if (!m.is_object()) return str("field '", cfg.prompt_field, "'[", k, "] must be an object {role, content}, got ", type_name(m));
      for (const char* key : {"role", "content"}) {
        auto f = m.find(key);
        if (f == m.end()) return str("field '", cfg.prompt_field, "'[", k, "] has no '", key, "'");
        if (!f->is_string()) return str("field '", cfg.prompt_field, "'[", k, "].", key, " must be a string, got ", type_name(*f));
      }
    }
  } else if (!p.is_string()) {
    return str("field '", cfg.prompt_field, "' must be a string or a list of {role, content} messages, got ", type_name(p));
  }
  if (!cfg.answer_field.empty() && !row.contains(cfg.answer_field))
    return str("missing field '", cfg.answer_field, "' (data.answer_field: a configured reward reads it; if none does, ",
               "data.answer_field: \"\" turns this check off)");
  return "";
}

Dataset Dataset::from_records(std::vector<Record> records, const config::DataConfig& cfg) {
  Dataset ds;
  for (auto& r : records) {
    std::string why = record_problem(r.row, cfg);
    if (why.empty()) {
      ds.records_.push_back(std::move(r));
      continue;
    }
    if (cfg.on_bad_record == config::OnBadRecord::ERROR)
      throw InputError(str(r.where(), ": ", why, " (set data.on_bad_record: skip to skip such records)"));
    ++ds.num_skipped_;
    if (ds.skipped_reasons_.size() < kMaxReasonsKept) ds.skipped_reasons_.push_back(r.where() + ": " + why);
  }
  return ds;
}

Dataset Dataset::load(const std::string& path, const config::DataConfig& cfg) {
  const std::string text = fs::read_file(path);
  const auto first = text.find_first_not_of(" \t\r\n");
  GRPO_REQUIRE(first != std::string::npos, path, ": the dataset is empty");
  Dataset ds;
  // Every malformed record, whether its JSON does not parse or its fields are wrong, goes through
  // here, in file order.
  auto bad = [&](const std::string& where, const std::string& why) {
    if (cfg.on_bad_record == config::OnBadRecord::ERROR)
      throw InputError(str(where, ": ", why, " (set data.on_bad_record: skip to skip such records)"));
    ++ds.num_skipped_;
    if (ds.skipped_reasons_.size() < kMaxReasonsKept) ds.skipped_reasons_.push_back(where + ": " + why);
  };
  auto add = [&](json row, int64_t line) {
    Record r{std::move(row), path, line};
    std::string why = record_problem(r.row, cfg);
    if (why.empty()) ds.records_.push_back(std::move(r));
    else bad(r.where(), why);
  };
  if (text[first] == '[') {
    for (auto& piece : split_array(text, path)) {
      try {
        add(json::parse(piece.text), piece.line);
      } catch (const json::parse_error& e) {
        // Line of the error inside the element: count newlines up to the reported byte.
        const size_t upto = std::min<size_t>(e.byte ? e.byte - 1 : 0, piece.text.size());
        const int64_t line = piece.line + std::count(piece.text.begin(), piece.text.begin() + upto, '\n');
        bad(str(path, ":", line), "invalid JSON: " + short_parse_error(e));
      }
    }
  } else {
    size_t pos = 0;
    int64_t line = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      ++line;
      std::string_view sv(text.data() + pos, end - pos);
      if (sv.find_first_not_of(" \t\r") != std::string_view::npos) {
        json row;
        bool ok = true;
        try {
          row = json::parse(sv);
        } catch (const json::parse_error& e) {
          ok = false;
          bad(str(path, ":", line), str("invalid JSON (column ", e.byte, "): ", short_parse_error(e)));
        }
        if (ok) add(std::move(row), line);
      }
      if (end == text.size()) break;
      pos = end + 1;
    }
  }
  if (ds.num_skipped_ > 0)
    log::warn(str(path, ": skipped ", ds.num_skipped_, " malformed record(s); first: ", ds.skipped_reasons_.front()));
  GRPO_REQUIRE(!ds.records_.empty(), path, ": no usable record (", ds.num_skipped_, " skipped)");
  return ds;
}

int64_t Dataset::drop_long_prompts(const std::function<int64_t(const Record&)>& length, int64_t max_tokens) {
  const size_t before = records_.size();
  std::erase_if(records_, [&](const Record& r) { return length(r) > max_tokens; });
  const int64_t dropped = static_cast<int64_t>(before - records_.size());
  num_dropped_long_ += dropped;
  return dropped;
}

}  // namespace grpo::data
