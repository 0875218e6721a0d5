#pragma once
// Scratch run directories and the files runs write (metrics, values, text) for the end-to-end and
// multi-process suites.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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

/// An empty directory under the temp dir, unique per process and per construction, removed with
/// everything in it when it goes out of scope. t / "name" is the path of a file in it.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "grpo_test_") {
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// The whole file as one string (empty if it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// Every whitespace-separated number of a text file, in order.
inline std::vector<double> read_values(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> v;
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

/// "key value" pairs of a text file (counts, metrics), whitespace-separated.
inline std::map<std::string, double> read_key_values(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, double> m;
  std::string k;
  double v;
  while (in >> k >> v) m[k] = v;
  return m;
}

/// max |a - b| / max |a|: the parameters of two runs, as one relative figure (infinite when the
/// sizes differ or there is nothing to compare).
inline double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(a[i]));
  }
  return num / den;
}

}  // namespace grpo::testing
