#pragma once
// The harness that runs assert-style tests (HumanEval / MBPP: "assert f(2) == 4") against an
// untrusted Python program so that the program cannot fake its own verdict.
//
// Design (docs/sandbox.md, "Scoring assert tests"): the harness is two processes inside the run.
// The child C executes the program and nothing else; the parent P never executes program code.
// P evaluates every test itself, in its own interpreter, where each function the program defined
// is a proxy that asks C to call it and returns the reply. Arguments and return values cross as
// marshal data checked to be plain values (None, bool, int, float, complex, str, bytes, tuple,
// list, dict, set, frozenset), so the program influences the verdict only through what its
// functions return: an `__eq__` that always says True, a patched AssertionError, a replaced
// builtin, an early exit(0), a forged success line, a closed or redirected stdout all fail to
// produce a passing verdict. P writes the verdict on its stdout with a nonce the host generated
// per run and sent on P's stdin; P reads it only after forking C, C points its own stdin/stdout at
// /dev/null before any program code runs, and P is non-dumpable so C cannot read P's memory or
// descriptors through /proc. Limits: tests must call the program's functions with plain values
// (no lambdas, no objects of the program's classes, no in-place mutation checks).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

/// The harness source (main.py): src/reward/sandbox_harness.py, compiled in byte for byte at build
/// time (src/reward/embed_file.cmake). It reads program.py and tests.json (a JSON list of test source
/// strings) from its work directory, takes a time budget in seconds as argv[1] and the nonce as
/// the first line of stdin, and prints "GRPO-VERDICT <nonce> <passed> <total> <bits>".
const std::string& python_assert_harness();

/// A parsed verdict line.
struct HarnessVerdict {
  int passed = 0;
  int total = 0;
  std::vector<bool> per_test;  // [total]
};

/// Finds the verdict carrying `nonce` in the harness's stdout. Returns nullopt when there is none,
/// it is malformed, or its total differs from `expected_total` (then the program gets no credit).
std::optional<HarnessVerdict> parse_harness_verdict(std::string_view harness_stdout, std::string_view nonce,
                                                    int expected_total);

/// A fresh 128-bit random nonce as 32 lowercase hex digits (std::random_device).
std::string make_nonce();

}  // namespace grpo::reward
