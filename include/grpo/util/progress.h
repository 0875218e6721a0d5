#pragma once
// A progress line for long loops (training stages): on a terminal one line rewritten in place,
//   stage sft  step 37/300  [###.......]  1.9 s/step  ETA 8m20s  loss 0.41 reward 0.72
// elsewhere (pipes, CI logs, files) the same text as a plain line about every 10% of the loop,
// or every `every` steps when that is set. Rates and ETA count only the steps of this process
// (a resumed run starts its clock at the resume step).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace grpo::util {

/// "42s", "8m20s", "2h05m" (seconds rounded to the nearest unit shown); "?" for a negative or
/// non-finite value.
std::string format_duration(double seconds);

class StepProgress {
 public:
  /// `label`: the prefix ("stage sft"). Steps [first_step, total_steps) remain. `every`: on a
  /// non-terminal, print every N steps (0 = about every 10% of the remaining steps). `out`: the
  /// stream (stderr by default). `tty`: force the mode (tests); default isatty(fileno(out)).
  StepProgress(std::string label, int64_t first_step, int64_t total_steps, int64_t every = 0, std::FILE* out = stderr,
               std::optional<bool> tty = std::nullopt);

  /// Reports that `step` steps are done (step counts from 0, so step == total_steps is the end).
  /// `values`: (name, value) pairs shown after the ETA, e.g. {{"loss", 0.41}, {"reward", 0.72}}.
  void update(int64_t step, const std::vector<std::pair<std::string, double>>& values = {});
  /// On a terminal: erases the line (call before logging, so log lines do not land on the bar).
  void clear();
  /// On a terminal: ends the line with a newline if one is shown.
  void finish();

  /// The text of one progress line (no "\r" or newline); public for tests.
  std::string line(int64_t step, double seconds_per_step, const std::vector<std::pair<std::string, double>>& values) const;
  bool tty() const { return tty_; }

 private:
  std::string label_;
  int64_t first_, total_, every_;
  std::FILE* out_;
  bool tty_;
  bool shown_ = false;  // a tty line is on screen
  int64_t last_printed_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace grpo::util
