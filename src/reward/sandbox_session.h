#pragma once
// A long-lived program in the sandbox that the host talks to while it runs: a persistent worker
// (the `python` reward's, python_reward.h) that answers one request line with one reply line, so
// that a batch costs one round trip instead of one sandbox start per row. Same isolation as
// Sandbox::run (namespaces, read-only view, seccomp, rlimits, an unprivileged uid); only the
// wall-clock limit differs: the host limits each request instead of the program's whole life.
#include <cstdint>
#include <memory>
#include <string>

#include "grpo/reward/sandbox.h"

namespace grpo::reward {

/// The limits of a session's program (the rest comes from the Sandbox's config).
struct SessionLimits {
  int64_t memory_bytes = 1LL << 30;  // RLIMIT_AS
  int max_processes = 32;            // RLIMIT_NPROC (threads count)
  int open_files = 256;
};

/// What became of one request.
struct SessionReply {
  bool ok = false;
  std::string line;   // the reply, without its '\n' (when ok)
  std::string error;  // what went wrong (when !ok): timeout, exit, flood, oversized reply, ...
};

class SandboxSession {
 public:
  /// Starts `interpreter` (resolved as SandboxConfig::python is) on `script` (main.py in the work
  /// directory, beside `files`) with `args`. Throws grpo::InputError when the interpreter is not
  /// visible in the sandbox or the sandbox cannot start.
  SandboxSession(const Sandbox& sandbox, const std::string& interpreter, const std::string& script,
                 const std::vector<SandboxFile>& files, const std::vector<std::string>& args,
                 const SessionLimits& limits);
  /// Kills the program and everything it started (its PID namespace dies with its init).
  ~SandboxSession();
  SandboxSession(const SandboxSession&) = delete;
  SandboxSession& operator=(const SandboxSession&) = delete;

  /// Writes `request` (one line, '\n' appended) to the program's stdin and waits for one line on its
  /// stdout, for at most `timeout_s`. Meanwhile its stderr is drained (the last 4 KiB are kept for
  /// messages). On a timeout, an exit, more than `max_reply_bytes` of reply or more than 64 MiB of
  /// stderr the program is killed and every later request fails at once (start a new session).
  SessionReply request(const std::string& request, double timeout_s, int64_t max_reply_bytes);

  bool alive() const;
  /// The last bytes the program wrote to stderr (its prints and tracebacks), for messages.
  std::string stderr_tail() const;
  /// The program's pid as the host sees it (its init's, for tests); -1 once stopped.
  int init_pid() const;

  struct State;

 private:
  std::unique_ptr<State> st_;
};

}  // namespace grpo::reward
