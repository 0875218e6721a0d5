#pragma once
// Scratch run directories and metrics files for the end-to-end suites.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::testing {

/// An empty directory under the temp dir, unique per process: CTest runs each test of a suite as
/// its own process, possibly side by side (ctest -j).
inline std::filesystem::path scratch_dir(const std::string& prefix, const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / (prefix + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p;
}

/// Every non-empty line of a JSONL file, parsed.
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace grpo::testing
