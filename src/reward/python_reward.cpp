// The `python` reward (python_reward.h): builds one request per batch, sends it to the function's
// worker in the sandbox and turns the reply into RewardScores; any failure of the call masks the
// batch with one error and restarts the worker.
#include "grpo/reward/python_reward.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "sandbox_session.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "sandbox_run.h"

namespace grpo::reward {

namespace sandbox_detail {
// src/reward/python_reward_worker.py, compiled in at build time (src/reward/embed_file.cmake).
extern const unsigned char kPythonRewardWorkerPy[];
extern const std::size_t kPythonRewardWorkerPySize;
}  // namespace sandbox_detail

const std::string& python_reward_worker_source() {
  static const std::string src(reinterpret_cast<const char*>(sandbox_detail::kPythonRewardWorkerPy),
                               sandbox_detail::kPythonRewardWorkerPySize);
  return src;
}

namespace {

bool is_messages(const nlohmann::json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const auto& m : v)
    if (!m.is_object() || !m.contains("content")) return false;
  return true;
}

bool is_special_key(const std::string& k) {
  return k == "prompt" || k == "completion" || k == "completion_ids" || k == "completion_tokens" ||
         k == "trainer_state";
}

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The last non-blank line of a traceback ("ZeroDivisionError: division by zero"), for row problems.
std::string last_line(const std::string& text) {
  std::istringstream is(text);
  std::string line, last;
  while (std::getline(is, line))
    if (line.find_first_not_of(" \t") != std::string::npos) last = line;
  return last;
}

}  // namespace

nlohmann::json python_reward_request(const std::vector<RewardInput>& batch) {
  // TRL's is_conversational: the prompt is a list of messages. The offline CLI may also give the
  // completion as messages.
  bool chat = false;
  for (const auto& r : batch)
    if (r.reference.is_object() && ((r.reference.contains("prompt") && is_messages(r.reference["prompt"])) ||
                                    (r.reference.contains("completion") && is_messages(r.reference["completion"]))))
      chat = true;
  nlohmann::json prompts = nlohmann::json::array(), completions = nlohmann::json::array();
  nlohmann::json ids = nlohmann::json::array();
  bool have_ids = !batch.empty();
  for (const auto& r : batch) {
    const nlohmann::json* ref = r.reference.is_object() ? &r.reference : nullptr;
    if (chat && ref && ref->contains("prompt") && is_messages((*ref)["prompt"])) prompts.push_back((*ref)["prompt"]);
    else if (chat) prompts.push_back(nlohmann::json::array({{{"role", "user"}, {"content", r.prompt}}}));
    else prompts.push_back(r.prompt);
    if (chat) completions.push_back(nlohmann::json::array({{{"role", "assistant"}, {"content", r.completion}}}));
    else completions.push_back(r.completion);
    if (ref && ref->contains("completion_ids") && (*ref)["completion_ids"].is_array()) ids.push_back((*ref)["completion_ids"]);
    else have_ids = false;
  }
  // The trainer puts the same TrainerState fields on every row (grpo_stage.cpp); offline (grpo reward)
  // there is none and the function gets None.
  nlohmann::json trainer_state = nullptr;
  if (!batch.empty() && batch.front().reference.is_object() && batch.front().reference.contains("trainer_state"))
    trainer_state = batch.front().reference["trainer_state"];
  nlohmann::json columns = nlohmann::json::object();
  for (const auto& r : batch)
    if (r.reference.is_object())
      for (const auto& [k, v] : r.reference.items())
        if (!is_special_key(k) && !columns.contains(k)) columns[k] = nlohmann::json::array();
  for (auto& [k, col] : columns.items())
    for (const auto& r : batch)
      col.push_back(r.reference.is_object() && r.reference.contains(k) ? r.reference[k] : nlohmann::json());
  return {{"prompts", std::move(prompts)},
          {"completions", std::move(completions)},
          {"completion_ids", have_ids ? std::move(ids) : nlohmann::json()},
          {"columns", std::move(columns)},
          {"trainer_state", trainer_state}};
}

PythonReward::PythonReward(config::PythonParams params, const config::SandboxConfig& sandbox) : p_(std::move(params)) {
  GRPO_REQUIRE(!p_.file.empty(), "reward python: `file` is required (the .py file defining the function)");
  GRPO_REQUIRE(!p_.function.empty(), "reward python: `function` is required (the function's name in ", p_.file, ")");
  std::ifstream in(p_.file, std::ios::binary);
  GRPO_REQUIRE(in.good(), "reward python: cannot read file '", p_.file, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  source_ = ss.str();
  GRPO_REQUIRE(!sandbox_detail::find_on_sandbox_path(p_.python).empty(), "reward python: interpreter '", p_.python,
               "' is not visible in the sandbox: give a name on ", sandbox_detail::kSandboxPath,
               " or an absolute path under /usr (e.g. a venv made in /usr/local)");
  sandbox_ = std::make_unique<Sandbox>(sandbox);
}

PythonReward::~PythonReward() = default;

int PythonReward::workers_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

int PythonReward::worker_pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return worker_ && worker_->alive() ? worker_->init_pid() : -1;
}

std::string PythonReward::fail_batch(const std::string& what, RewardScores& out, const std::string& output) const {
  std::string msg = str("python reward ", p_.file, ":", p_.function, ": ", what);
  if (!output.empty()) {
    std::string tail = output.size() > 1000 ? "..." + output.substr(output.size() - 1000) : output;
    msg += "; its last output:\n" + tail;
  }
  log::warn(msg);
  const std::string row_msg = str("python reward ", p_.file, ":", p_.function, ": ", last_line(what),
                                  " (batch failed, row masked)");
  for (size_t i = 0; i < out.size(); ++i) {
    out.values[i] = 0.0f;
    out.masked[i] = 1;
    out.problems[i] = row_msg;
  }
  out.counters["batch_errors"] += 1;
  worker_.reset();  // killed; a fresh worker serves the next batch
  return msg;
}

RewardScores PythonReward::score_batch(const std::vector<RewardInput>& batch) const {
  RewardScores out(batch.size());
  if (batch.empty()) return out;
  const std::string request =
      python_reward_request(batch).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  std::lock_guard<std::mutex> lock(mu_);
  if (!worker_ || !worker_->alive()) {
    std::string file = base_name(p_.file);
    if (file == "main.py") file = "user_main.py";
    std::vector<std::string> args = {file, p_.function};
    if (sandbox_->isolation().pid_ns) args.push_back("--kill-strays");
    SessionLimits lim;
    lim.memory_bytes = int64_t(p_.memory_mb) << 20;
    lim.max_processes = sandbox_->config().max_processes;
    lim.open_files = std::max(256, sandbox_->config().max_open_files);
    try {
      worker_ = std::make_unique<SandboxSession>(*sandbox_, p_.python, python_reward_worker_source(),
                                                 std::vector<SandboxFile>{{file, source_}}, args, lim);
    } catch (const std::exception& e) {
      fail_batch(str("could not start the worker: ", e.what()), out);
      return out;
    }
    ++started_;
    if (started_ > 1) out.counters["worker_restarts"] += 1;
  }
  const int64_t max_reply = (1 << 20) + 64 * static_cast<int64_t>(batch.size());
  SessionReply rep = worker_->request(request, p_.timeout_s, max_reply);
  if (!rep.ok) {
    fail_batch(rep.error, out, worker_->stderr_tail());
    return out;
  }
  nlohmann::json reply = nlohmann::json::parse(rep.line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    fail_batch(str("the worker's reply is not JSON: ", rep.line.substr(0, 200)), out);
    return out;
  }
  if (reply.contains("error")) {
    fail_batch(reply["error"].is_string() ? reply["error"].get<std::string>() : reply["error"].dump(), out);
    return out;
  }
  const auto& values = reply["values"];
  if (!values.is_array() || values.size() != batch.size()) {
    fail_batch(str("the reply holds ", values.is_array() ? values.size() : 0, " values for ", batch.size(), " rows"), out);
    return out;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& v = values[i];
    if (v.is_number()) {
      out.values[i] = v.get<float>();
      if (std::isfinite(out.values[i])) continue;
      out.problems[i] = str("python reward ", p_.function, ": value ", v.dump(), " overflows float32 (row masked)");
    } else if (v.is_null()) {
      out.problems[i] = str("python reward ", p_.function, ": returned None for this row (masked, as TRL)");
    } else {
      out.problems[i] = str("python reward ", p_.function, ": returned ", v.is_string() ? v.get<std::string>() : v.dump(),
                            " for this row (masked)");
    }
    out.values[i] = 0.0f;
    out.masked[i] = 1;
    out.counters["masked_rows"] += 1;
  }
  return out;
}

}  // namespace grpo::reward
