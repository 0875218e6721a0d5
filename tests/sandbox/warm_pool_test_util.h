#pragma once
// Helpers of the PythonWarmPool tests (python_warm_pool_test.cpp, python_warm_pool_exit_test.cpp).
#include <chrono>
#include <string>
#include <thread>

#include "grpo/reward/python_warm_pool.h"
#include "sandbox_test_util.h"

namespace grpo::test {

// Waits (up to 30 s) until `pool` holds `n` idle interpreters whose python has started (its
// command line, which carries the marker, is visible).
inline bool wait_idle(const reward::PythonWarmPool& pool, size_t n) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (pool.idle_init_pids().size() >= n && pids_with_marker(run_marker()).size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The reference for a pre-started run: a cold Sandbox::run of the same program (`python3 -B main.py`).
inline reward::SandboxResult cold(const std::string& src) {
  reward::SandboxRequest r;
  r.language = config::CodeLanguage::PYTHON;
  r.source = src;
  r.args = {run_marker()};
  return shared_sandbox().run(r);
}

}  // namespace grpo::test
