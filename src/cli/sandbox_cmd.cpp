// `grpo sandbox run FILE [--lang python|cpp] [--stdin FILE] [--config FILE]`: runs one program in
// the code sandbox and prints the result as JSON (for trying programs by hand and for the tests).
#include <iostream>

#include <nlohmann/json.hpp>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/reward/sandbox.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::cli {
namespace {

struct SandboxArgs {
  std::string file;
  std::string lang;
  std::string stdin_file;
  std::string config_file;
  std::vector<std::string> overrides;
};

nlohmann::json to_json(const reward::SandboxResult& r) {
  nlohmann::json j;
  j["status"] = std::string(reward::status_name(r.status));
  j["stage"] = r.stage;
  j["exit_code"] = r.exit_code;
  j["signal"] = r.signal;
  j["stdout"] = r.stdout_data;
  j["stderr"] = r.stderr_data;
  j["stdout_truncated"] = r.stdout_truncated;
  j["stderr_truncated"] = r.stderr_truncated;
  j["wall_s"] = r.wall_s;
  j["cpu_s"] = r.cpu_s;
  j["peak_memory_bytes"] = r.peak_memory_bytes;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace

void register_sandbox_commands(CLI::App& app) {
  auto* sb = app.add_subcommand("sandbox", "Run untrusted programs in the code sandbox");
  sb->require_subcommand(1);
  static SandboxArgs a;
  auto* run = sb->add_subcommand("run", "Run one program in the sandbox and print the result as JSON");
  run->add_option("file", a.file, "Program source (.py or .cpp)")->required();
  run->add_option("--lang", a.lang, "python or cpp (default: from the file extension, else python)");
  run->add_option("--stdin", a.stdin_file, "File fed to the program's standard input");
  run->add_option("--config", a.config_file, "YAML config whose reward.sandbox section sets the limits");
  run->add_option("overrides", a.overrides, "key.path=value overrides of the config (needs --config)");
  run->callback([] {
    config::SandboxConfig cfg;
    if (!a.config_file.empty()) {
      cfg = config::load_config(a.config_file, a.overrides).config.reward.sandbox;
    } else {
      GRPO_REQUIRE(a.overrides.empty(), "sandbox run: overrides need --config FILE");
    }
    config::CodeLanguage lang = config::CodeLanguage::PYTHON;
    std::string l = a.lang;
    if (l.empty()) {
      auto ends = [&](const char* ext) {
        std::string e(ext);
        return a.file.size() >= e.size() && a.file.compare(a.file.size() - e.size(), e.size(), e) == 0;
      };
      l = ends(".cpp") || ends(".cc") || ends(".cxx") ? "cpp" : "python";
    }
    auto parsed = config::enum_from_name<config::CodeLanguage>(l);
    GRPO_REQUIRE(parsed.has_value(), "sandbox run: --lang must be python or cpp, got '", l, "'");
    lang = *parsed;
    reward::SandboxRequest req;
    req.language = lang;
    req.source = fs::read_file(a.file);
    std::string in = a.stdin_file.empty() ? std::string() : fs::read_file(a.stdin_file);
    reward::Sandbox sandbox(cfg);
    auto r = sandbox.run(req, in);
    nlohmann::json j = to_json(r);
    j["isolation"] = sandbox.isolation().describe();
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  });
}

}  // namespace grpo::cli
