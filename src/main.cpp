// The `grpo` executable: parses the command line, runs one subcommand, and is the only place that
// turns exceptions into a message and an exit code (0 ok, 2 bad input or usage, 1 internal error).
#include <CLI/CLI.hpp>
#include <iostream>

#include "grpo/cli/commands.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "grpo/util/malloc_tuning.h"

#ifndef GRPO_VERSION
#define GRPO_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  grpo::util::tune_malloc_for_cpu_tensors();  // CPU tensors reuse heap blocks (malloc_tuning.h)
  CLI::App app{"grpo: native GRPO training for reasoning LLMs", "grpo"};
  app.set_version_flag("--version", std::string("grpo ") + GRPO_VERSION);
  app.require_subcommand(1);
  grpo::cli::register_config_commands(app);
  grpo::cli::register_model_commands(app);
  grpo::cli::register_train_commands(app);
  grpo::cli::register_plan_commands(app);
  grpo::cli::register_tokenizer_commands(app);
  grpo::cli::register_generate_commands(app);
  grpo::cli::register_eval_commands(app);
  grpo::cli::register_launch_commands(app);
  grpo::cli::register_reward_commands(app);
  grpo::cli::register_sandbox_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const grpo::InputError& e) {
    std::cerr << "grpo: error: " << e.what() << "\n";
    return 2;
  } catch (const grpo::InternalError& e) {
    std::cerr << "grpo: internal error: " << e.what() << "\n";
    return 1;
  } catch (const grpo::Error& e) {  // a run that failed for a reason outside the input (a dead rank, divergence)
    std::cerr << "grpo: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "grpo: internal error: " << e.what() << "\n";
    return 1;
  }
  grpo::log::flush();
  return 0;
}
