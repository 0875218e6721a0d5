#include "grpo/util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace grpo::util {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[64];
  if (s < 59.5) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 3600 - 0.5) {
    const auto t = static_cast<int64_t>(std::llround(s));
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  } else {
    const auto m = static_cast<int64_t>(std::llround(s / 60));
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(m / 60), static_cast<long long>(m % 60));
  }
  return buf;
}

StepProgress::StepProgress(std::string label, int64_t first_step, int64_t total_steps, int64_t every, std::FILE* out,
                           std::optional<bool> tty)
    : label_(std::move(label)),
      first_(first_step),
      total_(std::max<int64_t>(total_steps, 1)),
      every_(every),
      out_(out),
      tty_(tty ? *tty : (out != nullptr && isatty(fileno(out)) != 0)),
      t0_(std::chrono::steady_clock::now()) {
  // Plain mode: about every 10% of what is left to do (at least every step).
  if (every_ <= 0) every_ = std::max<int64_t>(1, (total_ - first_ + 9) / 10);
}

std::string StepProgress::line(int64_t step, double sps, const std::vector<std::pair<std::string, double>>& values) const {
  constexpr int width = 10;
  const int filled = static_cast<int>(std::clamp<int64_t>(width * step / total_, 0, width));
  std::string s = label_ + "  step " + std::to_string(step) + "/" + std::to_string(total_) + "  [" +
                  std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') + "]";
  char buf[64];
  if (std::isfinite(sps) && sps > 0) {
    if (sps >= 1 || sps == 0) std::snprintf(buf, sizeof buf, "  %.1f s/step", sps);
    else std::snprintf(buf, sizeof buf, "  %.1f steps/s", 1.0 / sps);
    s += buf;
    s += "  ETA " + format_duration(sps * static_cast<double>(std::max<int64_t>(0, total_ - step)));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%s %.4g", i == 0 ? "  " : " ", values[i].first.c_str(), values[i].second);
    s += buf;
  }
  return s;
}

void StepProgress::update(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (!out_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const int64_t done = step - first_;
  const double sps = done > 0 ? elapsed / static_cast<double>(done) : NAN;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", line(step, sps, values).c_str());
    shown_ = true;
    if (step >= total_) finish();
  } else if (step >= total_ || done % every_ == 0) {
    if (step == last_printed_) return;
    last_printed_ = step;
    std::fprintf(out_, "%s\n", line(step, sps, values).c_str());
  }
  std::fflush(out_);
}

void StepProgress::clear() {
  if (!out_ || !tty_ || !shown_) return;
  std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
  shown_ = false;
}

void StepProgress::finish() {
  if (!out_ || !tty_ || !shown_) return;
  std::fprintf(out_, "\n");
  std::fflush(out_);
  shown_ = false;
}

}  // namespace grpo::util
