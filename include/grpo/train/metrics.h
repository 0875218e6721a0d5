#pragma once
// Per-step metrics of a run: <run>/metrics.jsonl (one JSON object per logged step, keys sorted,
// "step" first), TensorBoard scalars under <run>/tensorboard/, and sample completions in
// <run>/samples.jsonl. Everything is appended and flushed per call so a crash loses at most the
// current step.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grpo::train {

class TensorBoardWriter;

/// Writes the metrics of a run.
class MetricsLogger {
 public:
  /// run_dir: the run directory (created). report_to: any of "jsonl", "tensorboard" (others throw
  /// grpo::InputError naming the allowed values). resume_metrics: when resuming, the metrics.jsonl
  /// content saved in the checkpoint: metrics.jsonl is rewritten to exactly that (steps logged after
  /// the checkpoint are discarded, so a resumed run's file has each step once); nullopt starts a new
  /// file (an existing one is replaced). Throws grpo::InputError when a file cannot be created.
  MetricsLogger(const std::string& run_dir, const std::vector<std::string>& report_to,
                const std::optional<std::string>& resume_metrics = std::nullopt);
  ~MetricsLogger();

  /// Logs one step: a line {"step": step, key: value...} (non-finite values become null, as JSON has
  /// no NaN) and a TensorBoard event. Throws grpo::InputError on a write error.
  void log(int64_t step, const std::map<std::string, double>& metrics);
  /// Appends one JSON object per sample to samples.jsonl, each with "step" added.
  void log_samples(int64_t step, const std::vector<nlohmann::json>& samples);
  /// Everything written to metrics.jsonl so far (for TrainState::metrics_jsonl).
  const std::string& history() const { return history_; }

  std::string metrics_path() const;
  std::string samples_path() const;

 private:
  std::string dir_;
  bool jsonl_ = false;
  std::string history_;
  std::FILE* metrics_ = nullptr;
  std::FILE* samples_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tb_;
};

}  // namespace grpo::train
