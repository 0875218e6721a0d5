#include "grpo/util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <set>

#include "grpo/util/error.h"

namespace grpo::log {
namespace {

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::TRACE: return spdlog::level::trace;
    case Level::DEBUG: return spdlog::level::debug;
    case Level::INFO: return spdlog::level::info;
    case Level::WARN: return spdlog::level::warn;
    case Level::ERROR: return spdlog::level::err;
    case Level::OFF: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("grpo", sink);
    lg->set_pattern("%^[%H:%M:%S %L]%$ %v");
    lg->set_level(spdlog::level::info);
    return lg;
  }();
  return l;
}

}  // namespace

Level parse_level(const std::string& name) {
  if (name == "trace") return Level::TRACE;
  if (name == "debug") return Level::DEBUG;
  if (name == "info") return Level::INFO;
  if (name == "warn") return Level::WARN;
  if (name == "error") return Level::ERROR;
  if (name == "off") return Level::OFF;
  throw InputError(str("log level must be one of trace, debug, info, warn, error, off; got '", name, "'"));
}

void init(Level level, const std::string& file, int rank, Level file_level) {
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(to_spd(level));
  sinks.push_back(console);
  if (!file.empty()) {
    try {
      auto fs = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
      fs->set_level(to_spd(file_level));
      sinks.push_back(fs);
    } catch (const spdlog::spdlog_ex& e) {
      throw InputError(str("cannot open log file '", file, "': ", e.what()));
    }
  }
  auto lg = std::make_shared<spdlog::logger>("grpo", sinks.begin(), sinks.end());
  std::string prefix = rank >= 0 ? str("[rank ", rank, "] ") : "";
  lg->set_pattern("%^[%Y-%m-%d %H:%M:%S.%e %L]%$ " + prefix + "%v");
  lg->set_level(spdlog::level::trace);  // each sink filters on its own level
  lg->flush_on(spdlog::level::warn);
  logger() = lg;
}

void trace(const std::string& msg) { logger()->trace(msg); }
void debug(const std::string& msg) { logger()->debug(msg); }
void info(const std::string& msg) { logger()->info(msg); }
void warn(const std::string& msg) { logger()->warn(msg); }
void error(const std::string& msg) { logger()->error(msg); }

void warn_once(const std::string& key, const std::string& msg) {
  static std::mutex mu;
  static std::set<std::string> seen;
  {
    std::lock_guard<std::mutex> g(mu);
    if (!seen.insert(key).second) return;
  }
  warn(msg);
}

void flush() { logger()->flush(); }

}  // namespace grpo::log
