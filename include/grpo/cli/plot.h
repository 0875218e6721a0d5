#pragma once
// Training curves as a PNG, drawn by gnuplot (Debian's gnuplot-nox): reward, accuracy, KL and
// completion length over steps, from a run's metrics.jsonl.
#include <string>

namespace grpo::cli {

/// Writes `png` from `metrics_jsonl`. Returns "" on success, else why no plot was made (gnuplot
/// missing, no metrics); never throws for those, as a plot is a convenience of the run.
std::string write_training_plot(const std::string& metrics_jsonl, const std::string& png);

}  // namespace grpo::cli
