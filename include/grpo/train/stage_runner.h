#pragma once
// What a GRPO stage and an SFT stage share: AdamW with the learning-rate schedule, gradient
// clipping, data-parallel gradient averaging, metrics, checkpoints with exact resume, and a clean
// stop on SIGINT/SIGTERM (save, then return). Each stage kind implements one optimizer step.
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "grpo/config/config.h"
#include "grpo/data/dataset.h"
#include "grpo/data/loader.h"
#include "grpo/dist/distributed.h"
#include "grpo/dist/grad_reducer.h"
#include "grpo/dist/sharding.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/metrics.h"
#include "grpo/train/policy.h"
#include "grpo/train/schedule.h"
#include "grpo/train/step_metrics.h"

namespace grpo::train {

/// Set by SIGINT/SIGTERM (install_stop_handlers); stages check it after every step.
extern std::atomic<int> g_stop_signal;
/// Installs handlers that set g_stop_signal (a second signal restores the default action).
void install_stop_handlers();

/// How a stage ended.
enum class StageOutcome { FINISHED, INTERRUPTED };

/// Resolved settings of one stage.
struct StageSettings {
  config::StageKind kind = config::StageKind::GRPO;
  int64_t max_steps = 1;
  double learning_rate = 1e-6;
  int per_device_train_batch_size = 8;
  std::string response_field = "solution";
  std::string dir;     // the stage's run directory (checkpoints/, metrics.jsonl, final/)
  std::string resume;  // "", "auto" or a checkpoint path
  /// >= 0: the stage had finished at this many steps and max_steps is now larger, so it continues
  /// from its checkpoint (one must exist: training it again from step 0 would not be an extension).
  int64_t finished_steps = -1;
};

class StageRunner {
 public:
  StageRunner(const config::Config& cfg, StageSettings settings, Policy& policy, std::shared_ptr<dist::Distributed> dist);
  virtual ~StageRunner();

  /// Trains until settings.max_steps (resuming first when asked) or a stop signal; saves a
  /// checkpoint every checkpoint.save_steps, at the end and when interrupted. Throws
  /// grpo::InputError for bad data or a corrupt resume checkpoint, grpo::Error when training
  /// diverges (trainer.max_consecutive_nonfinite non-finite steps in a row).
  StageOutcome run();

  int64_t step() const { return step_; }
  const std::map<std::string, double>& last_metrics() const { return last_metrics_; }

 protected:
  /// One optimizer step (or, for GRPO with num_iterations > 1, one of the updates of a generation
  /// batch). Fills `metrics`; returns false when the step was skipped (non-finite loss/gradient).
  virtual bool train_step(std::map<std::string, double>& metrics) = 0;
  /// Extra state to checkpoint (beyond weights, optimizer, data position, step).
  virtual nlohmann::json extra_state() const { return nlohmann::json::object(); }
  virtual void restore_extra_state(const nlohmann::json&) {}
  /// False while a step's state cannot be checkpointed exactly (GRPO between the updates of one
  /// generation batch): saves and signal stops wait for the next boundary.
  virtual bool can_checkpoint() const { return true; }
  /// The data position a checkpoint saves: the next prompt the training has not consumed (GRPO's
  /// async rollout draws ahead of it: see GrpoStage).
  virtual data::LoaderPosition data_position() const { return loader_->position(); }

  /// Averages gradients over ranks, clips them (max_grad_norm), and steps the optimizer at the
  /// scheduled learning rate unless the gradient is non-finite. Returns the pre-clip norm.
  double apply_gradients(StepMetrics& metrics);
  /// With several ranks: true only when `finite` is true on every rank (one collective), so that
  /// all ranks either step or skip together. One rank: `finite`.
  bool ranks_agree_finite(bool finite);
  /// Drops this step's gradients (a skipped step), first waiting for the all-reduces that
  /// backward started, so that the next step's buckets start clean.
  void discard_gradients();

  /// The step's metrics over all ranks (StepMetrics::reduce: each key by the reduction it was
  /// recorded with; one device-to-host copy for the values still on the device).
  std::map<std::string, double> reduce_metrics(StepMetrics& metrics);

  const config::Config& cfg_;
  StageSettings settings_;
  Policy& policy_;
  std::shared_ptr<dist::Distributed> dist_;
  std::unique_ptr<data::Dataset> train_data_;
  std::unique_ptr<data::Loader> loader_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<dist::GradientReducer> reducer_;
  std::unique_ptr<dist::Sharder> sharder_;  // distributed.sharding optimizer/full (reducer_ is null then)
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<MetricsLogger> metrics_log_;
  int64_t step_ = 0;
  std::map<std::string, double> last_metrics_;

 private:
  void save(const std::string& why);
  void try_resume();
  /// Loads a checkpoint's tensors into the model and the optimizer (or the sharder's slices).
  LoadedCheckpoint load_checkpoint_tensors(const std::string& path);
  /// This rank's RNG state after a resume, on any world size (see the definition).
  void restore_rank_rng(const TrainState& st, const std::string& path);
  /// True when any rank received a stop signal (one MAX all-reduce per step with several ranks).
  bool stop_requested();
  /// Replaces each MoE layer's pending expert load by its sum over ranks (before update_bias).
  void sum_expert_load_over_ranks();
  double apply_sharded_gradients(StepMetrics& metrics);
  // sharding full: every block gathered for the lifetime of this guard (no-op without a sharder).
  struct WholeWeights {
    explicit WholeWeights(dist::Sharder* s);
    ~WholeWeights();
    dist::Sharder* sharder;
  };
  int nonfinite_in_a_row_ = 0;
  int64_t nonfinite_total_ = 0;
};

/// cfg.data as the dataset loader should apply it: data.answer_field cleared (not required) when
/// no configured reward reads that field (reward::reference_fields).
config::DataConfig dataset_config(const config::Config& cfg);

/// Loads a dataset with the config's field names and drops prompts longer than
/// data.max_prompt_length tokens (counted).
std::unique_ptr<data::Dataset> load_prompt_dataset(const std::string& path, const config::Config& cfg,
                                                   const Policy& policy);

/// The chat messages of a record (data::render_prompt converted to the tokenizer's type).
std::vector<tok::ChatMessage> prompt_messages(const data::Record& r, const config::Config& cfg);

}  // namespace grpo::train
