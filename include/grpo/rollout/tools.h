#pragma once
// Tools the policy calls while it generates (rollout.tools, docs/rollout.md): a completion that
// emits a call (call_start ... call_end) pauses, the code runs, and the result, wrapped in
// output_prefix / output_suffix and tokenised, is appended to it as injected tokens.
//
// A ToolExecutor runs one call; the engine runs several at once on its own threads, so run() must
// be thread-safe. make_python_tool() is the sandbox-backed `python` tool (reward::Sandbox: the
// layering puts reward below rollout); tests and other tools implement ToolExecutor themselves.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/rollout_config.h"

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

/// One call as the policy wrote it.
struct ToolCall {
  std::string tool;  // "python"
  std::string code;  // the text between call_start and call_end
};

enum class ToolOutcome { OK, ERROR, TIMEOUT };

/// What the model sees of one call, and how it went.
struct ToolResult {
  ToolOutcome outcome = ToolOutcome::OK;
  std::string body;      // the result text (stdout, and on a failure the stderr tail or a message)
  double run_seconds = 0;  // wall time of the run itself (the sandbox's start, or the hand-over to a
                           // pre-started interpreter, to its end)
  bool prestarted = false;  // ran in an interpreter started before the call (the python tool's pool)
};

class ToolExecutor {
 public:
  virtual ~ToolExecutor() = default;
  /// Runs `call`; never throws for what the program does (failures are ERROR / TIMEOUT results).
  virtual ToolResult run(const ToolCall& call) const = 0;
  /// The engine brackets each generate() with tools on by prepare(concurrent calls) ... release().
  /// Between them an executor may start work ahead of the calls (the python tool keeps that many
  /// interpreters pre-started); when release() returns, nothing of it may be left running.
  /// Calls may pair up across engines sharing an executor: count them.
  virtual void prepare(int max_concurrent_calls) const { (void)max_concurrent_calls; }
  virtual void release() const {}
};

/// The `python` tool: each call is a fresh sandbox run of the code as main.py (stateless: no state
/// survives between calls, see docs/rollout.md), limited by cfg.timeout_s (wall and CPU),
/// cfg.memory_mb and cfg.max_output_bytes. Between prepare(n) and release() it keeps n interpreters
/// started in fresh sandboxes, waiting for their program (reward::PythonWarmPool: one interpreter
/// per call, the wall-clock limit counted from the hand-over); a call that finds none idle starts
/// its own. `args` are argv[1..] of every program (tests mark their runs with them). Throws
/// grpo::InputError when the sandbox cannot be set up.
std::unique_ptr<ToolExecutor> make_python_tool(const config::ToolsConfig& cfg, std::vector<std::string> args = {});

/// The injected text of a result body: output_prefix + body without its trailing '\n's + output_suffix.
std::string tool_result_text(const config::ToolsConfig& cfg, const std::string& body);
/// Its token ids: tok.encode(tool_result_text(cfg, body)), one encode of the whole string, no bos.
/// Training data that contains tool results must tokenise them this way (train == rollout).
std::vector<int64_t> tool_result_tokens(const tok::Tokenizer& tok, const config::ToolsConfig& cfg,
                                        const std::string& body);

/// Throws grpo::InputError when cfg is unusable: an unknown tool, call_start / call_end of
/// different lengths or with an empty string.
void validate_tools(const config::ToolsConfig& cfg);

}  // namespace grpo::rollout
