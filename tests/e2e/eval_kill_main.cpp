// e2e_eval_kill N eval TARGET [args...]: the `grpo eval` subcommand with a write hook
// (train::set_eval_write_hook_for_testing) that SIGKILLs the process right after the N-th problem's
// line is flushed: in the middle of a chunk, so the resume must re-run a partly written chunk.
// The resume test (eval_cli_test.cpp) runs it in place of the grpo executable, so production code
// carries no fault-injection switch.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "grpo/cli/commands.h"
#include "grpo/train/eval_run.h"
#include "grpo/util/error.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: e2e_eval_kill N eval TARGET [args...]\n";
    return 2;
  }
  const int64_t kill_after = std::stoll(argv[1]);
  grpo::train::set_eval_write_hook_for_testing([kill_after](int64_t written) {
    if (written == kill_after) ::raise(SIGKILL);
  });
  CLI::App app{"grpo eval with a SIGKILL after N problems", "e2e_eval_kill"};
  app.require_subcommand(1);
  grpo::cli::register_eval_commands(app);
  try {
    app.parse(argc - 1, argv + 1);  // argv[1] (N) stands where the program name would
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const grpo::InputError& e) {
    std::cerr << "e2e_eval_kill: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "e2e_eval_kill: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
