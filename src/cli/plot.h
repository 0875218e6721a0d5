#pragma once
// Training curves as a PNG, drawn by gnuplot (Debian's gnuplot-nox): reward, accuracy, KL and
// completion length over steps, from a run's metrics.jsonl.
#include <string>
#include <utility>
#include <vector>

namespace grpo::cli {

/// Writes `png` from `metrics_jsonl`. Returns "" on success, else why no plot was made (gnuplot
/// missing, no metrics); never throws for those, as a plot is a convenience of the run.
/// `heldout`: extra (step, held-out accuracy in [0, 1]) points drawn with the periodic evaluations,
/// e.g. the previous stage's result at step 0 and this stage's final evaluation.
std::string write_training_plot(const std::string& metrics_jsonl, const std::string& png,
                                const std::vector<std::pair<double, double>>& heldout = {});

}  // namespace grpo::cli
