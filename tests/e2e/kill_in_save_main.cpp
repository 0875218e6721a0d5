// e2e_kill_in_save STEP train CONFIG [overrides...] [--resume ...]: the `grpo train` subcommand
// with a checkpoint save hook (train::set_save_hook_for_testing) that SIGKILLs the process while
// step STEP's checkpoint is being saved, after its weights are written and before anything marks
// it complete. The crash-during-save test (ci_smoke_test.cpp) runs it in place of the grpo
// executable, so production code carries no fault-injection switch.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "grpo/cli/commands.h"
#include "grpo/train/checkpoint.h"
#include "grpo/util/error.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: e2e_kill_in_save STEP train CONFIG [overrides...]\n";
    return 2;
  }
  const int64_t kill_step = std::stoll(argv[1]);
  grpo::train::set_save_hook_for_testing([kill_step](int64_t step) {
    if (step == kill_step) ::raise(SIGKILL);
  });
  CLI::App app{"grpo train with a SIGKILL in one checkpoint save", "e2e_kill_in_save"};
  app.require_subcommand(1);
  grpo::cli::register_train_commands(app);
  try {
    app.parse(argc - 1, argv + 1);  // argv[1] (STEP) stands where the program name would
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const grpo::InputError& e) {
    std::cerr << "e2e_kill_in_save: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "e2e_kill_in_save: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
