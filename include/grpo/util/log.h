#pragma once
// Logging through spdlog, behind a small API so that no header of ours exposes spdlog or fmt
// (LibTorch ships its own fmt 12 headers, Debian's spdlog is built against fmt 9; keeping spdlog
// inside src/util/log.cpp keeps the two apart).
#include <string>

namespace grpo::log {

enum class Level { TRACE, DEBUG, INFO, WARN, ERROR, OFF };

/// Parses "trace|debug|info|warn|error|off". Throws grpo::InputError on anything else.
Level parse_level(const std::string& name);

/// (Re)configures the global logger: console sink on stderr at `level`, and, when `file` is not
/// empty, a file sink (appending) at `file_level`. `rank` >= 0 adds a "[rank N]" prefix, used once
/// distributed runs exist. Safe to call more than once. Throws grpo::InputError if the file cannot
/// be opened.
void init(Level level, const std::string& file = "", int rank = -1, Level file_level = Level::DEBUG);

void trace(const std::string& msg);
void debug(const std::string& msg);
void info(const std::string& msg);
void warn(const std::string& msg);
void error(const std::string& msg);

/// Logs `msg` at WARN only the first time `key` is seen in this process (e.g. sandbox fallbacks).
void warn_once(const std::string& key, const std::string& msg);

/// Flushes all sinks (call before exit or after a checkpoint).
void flush();

}  // namespace grpo::log
