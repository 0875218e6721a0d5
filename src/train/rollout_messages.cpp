#include "grpo/train/rollout_messages.h"

#include <nlohmann/json.hpp>

#include "grpo/util/error.h"

namespace grpo::train {

namespace {

nlohmann::json completion_to_json(const rollout::Completion& c) {
  return {{"prompt_index", c.prompt_index},   {"token_ids", c.token_ids},
          {"logprobs", c.logprobs},           {"text", c.text},
          {"finish_reason", static_cast<int>(c.finish_reason)},
          {"prompt_length", c.prompt_length}, {"completion_length", c.completion_length},
          {"tool_mask", c.tool_mask},         {"tool_calls", c.tool_calls},
          {"tool_errors", c.tool_errors},     {"tool_timeouts", c.tool_timeouts}};
}

rollout::Completion completion_from_json(const nlohmann::json& j) {
  rollout::Completion c;
  c.prompt_index = j.at("prompt_index").get<int64_t>();
  c.token_ids = j.at("token_ids").get<std::vector<int64_t>>();
  c.logprobs = j.at("logprobs").get<std::vector<float>>();
  c.text = j.at("text").get<std::string>();
  c.finish_reason = static_cast<rollout::FinishReason>(j.at("finish_reason").get<int>());
  c.prompt_length = j.at("prompt_length").get<int>();
  c.completion_length = j.at("completion_length").get<int>();
  c.tool_mask = j.at("tool_mask").get<std::vector<uint8_t>>();
  c.tool_calls = j.at("tool_calls").get<int>();
  c.tool_errors = j.at("tool_errors").get<int>();
  c.tool_timeouts = j.at("tool_timeouts").get<int>();
  return c;
}

}  // namespace

std::string encode_rollout_reply(const RolloutReply& r) {
  nlohmann::json j;
  j["policy_version"] = r.policy_version;
  j["completions"] = nlohmann::json::array();
  for (const auto& c : r.completions) j["completions"].push_back(completion_to_json(c));
  const auto& s = r.scored;
  j["names"] = s.names;
  j["weights"] = s.weights;
  j["per_function"] = s.per_function;
  j["total"] = s.total;
  j["masked"] = s.masked;
  j["problems"] = nlohmann::json::array();
  for (const auto& p : s.problems) j["problems"].push_back({p.row, p.function, p.message});
  j["counters"] = s.counters;
  auto bytes = nlohmann::json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

RolloutReply decode_rollout_reply(const std::string& bytes) {
  RolloutReply r;
  try {
    auto j = nlohmann::json::from_cbor(std::vector<uint8_t>(bytes.begin(), bytes.end()));
    r.policy_version = j.at("policy_version").get<int64_t>();
    for (const auto& c : j.at("completions")) r.completions.push_back(completion_from_json(c));
    auto& s = r.scored;
    s.names = j.at("names").get<std::vector<std::string>>();
    s.weights = j.at("weights").get<std::vector<double>>();
    s.per_function = j.at("per_function").get<std::vector<std::vector<float>>>();
    s.total = j.at("total").get<std::vector<float>>();
    s.masked = j.at("masked").get<std::vector<uint8_t>>();
    for (const auto& p : j.at("problems"))
      s.problems.push_back({p.at(0).get<size_t>(), p.at(1).get<std::string>(), p.at(2).get<std::string>()});
    s.counters = j.at("counters").get<std::map<std::string, double>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("rollout reply: malformed message: ") + e.what());
  }
  return r;
}

}  // namespace grpo::train
