#pragma once
// Paths shared by the tokenizer tests, and the SmolLM2 tokenizer.json files (not committed: 3.5 MB;
// scripts/make_tokenizer_refs.py --extract-only writes them from the GGUF into the data cache).
#include <cstdlib>
#include <filesystem>
#include <string>

namespace grpo::test {

inline const std::string kTokData = std::string(GRPO_SOURCE_DIR) + "/tests/tokenizer/data/";

inline std::string data_dir() {
  if (const char* d = std::getenv("GRPO_DATA_DIR")) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/grpo/data";
}

inline std::string smollm2_gguf() { return data_dir() + "/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"; }

/// Path of <cache>/smollm2/<sub>/tokenizer.json, extracting it with the venv python when missing;
/// "" when the GGUF or python is unavailable (callers skip with a message).
inline std::string smollm2_tokenizer_json(const std::string& sub) {
  namespace fs = std::filesystem;
  std::string p = data_dir() + "/smollm2/" + sub + "/tokenizer.json";
  if (fs::exists(p)) return p;
  if (!fs::exists(smollm2_gguf()) || std::string(GRPO_PYTHON).empty() || !fs::exists(GRPO_PYTHON)) return "";
  std::string cmd = std::string(GRPO_PYTHON) + " " + GRPO_SOURCE_DIR + "/scripts/make_tokenizer_refs.py --extract-only >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "";
  return fs::exists(p) ? p : "";
}

}  // namespace grpo::test
