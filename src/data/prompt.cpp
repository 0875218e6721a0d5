#include "grpo/data/prompt.h"

#include "grpo/util/error.h"

namespace grpo::data {

std::string fill_template(const std::string& tmpl, const nlohmann::json& row, const std::string& where) {
  const std::string at = where.empty() ? "" : where + ": ";
  std::string out;
  out.reserve(tmpl.size());
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c != '{') { out += c; continue; }
    const size_t close = tmpl.find('}', i + 1);
    GRPO_REQUIRE(close != std::string::npos, at, "data.prompt_template has an unclosed '{' at character ", i,
                 " (write {{ for a literal brace)");
    const std::string name = tmpl.substr(i + 1, close - i - 1);
    auto it = row.find(name);
    GRPO_REQUIRE(row.is_object() && it != row.end(), at, "data.prompt_template uses {", name,
                 "} but the record has no field '", name, "'");
    out += it->is_string() ? it->get<std::string>() : it->dump();
    i = close;
  }
  return out;
}

std::vector<ChatMessage> render_prompt(const Record& record, const config::DataConfig& cfg) {
  const std::string why = record_problem(record.row, cfg);
  GRPO_REQUIRE(why.empty(), record.where(), ": ", why);
  const auto& p = record.row.at(cfg.prompt_field);
  std::vector<ChatMessage> msgs;
  if (p.is_string()) {
    if (!cfg.system_prompt.empty()) msgs.push_back({"system", cfg.system_prompt});
    // {prompt} always means the prompt field, whatever data.prompt_field calls it.
    nlohmann::json row = record.row;
    if (cfg.prompt_field != "prompt" && !row.contains("prompt")) row["prompt"] = p;
    msgs.push_back({"user", fill_template(cfg.prompt_template, row, record.where())});
    return msgs;
  }
  for (const auto& m : p) msgs.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  if (!cfg.system_prompt.empty() && msgs.front().role != "system")
    msgs.insert(msgs.begin(), ChatMessage{"system", cfg.system_prompt});
  return msgs;
}

}  // namespace grpo::data
