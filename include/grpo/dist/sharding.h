#pragma once
// Sharded data parallel (distributed.sharding): ZeRO-1/2 ("optimizer") and ZeRO-3 / FSDP2 ("full").
//
// The trainable parameters are grouped into flat units: with `full`, one unit per decoder block
// (all its weights, experts included) plus units of about shard_bucket_cap_mb for the rest
// (embeddings, final norm, head); with `optimizer`, units of about shard_bucket_cap_mb over all of
// them. Each unit is one float32 buffer padded to a multiple of the world size; rank r owns the
// contiguous elements [r*S, (r+1)*S) (S = padded / world). Only the owner keeps the AdamW moments
// and the float32 master copy of its slice. After backward the gradients are reduce-scattered to
// the owners (Gloo and NCCL alike: one SUM all-reduce of the flat bucket, each rank keeping its
// slice; see reduce_scatter_flat), clipped on the global norm (sum of squares all-reduced), and
// AdamW steps the slices; the updated slices are all-gathered back into the parameters of the
// replicated units. Block units of `full` are never whole outside their block's forward and
// backward: a block runner installed on the model (sharded_block.cpp) gathers them around each.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/train_config.h"
#include "grpo/dist/distributed.h"
#include "grpo/model/transformer.h"

namespace grpo::dist {

/// One contiguous range of one global tensor held by this rank (the checkpoint's unit of storage;
/// the same fields as train::ShardPiece of shard_io.h, which dist cannot include).
struct ShardPiece {
  std::string key;             // weight: model->named_parameters() key; moments: "exp_avg/<param>", "exp_avg_sq/<param>"
  std::vector<int64_t> shape;  // global shape
  int64_t begin = 0, end = 0;  // flat row-major element range [begin, end) of the global tensor
  torch::Tensor data;          // [end - begin] float32 view of this rank's storage
};
struct LocalShards {
  std::vector<ShardPiece> weights, optimizer;      // trainable parameters only (buffers are not sharded)
  std::map<std::string, int64_t> optimizer_step;  // AdamW steps per parameter (0: no state yet)
};

struct ShardOptions {
  config::ShardingMode mode = config::ShardingMode::FULL;
  bool reshard_after_forward = true;
  bool forward_prefetch = true;
  bool backward_prefetch = true;
  int64_t bucket_bytes = 25ll << 20;
  bool bf16_gather = false;  // full: all-gather block weights in bf16 (trainer.bf16); masters stay float32
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;

  static ShardOptions from_config(const config::DistributedConfig& d, const config::OptimizerConfig& o, bool bf16);
};

/// Collective counts and bytes, for the log and the tests (which also count c10d's own calls).
struct ShardTraffic {
  int64_t all_gathers = 0, reduce_scatters = 0, prefetched = 0;  // block gathers launched ahead of use
};

class Sharder {
 public:
  /// Takes over `model`'s trainable parameters (identical on every rank). With `full`, installs a
  /// block runner on the model and frees every block's parameters (empty tensors) on this rank.
  /// Throws grpo::InputError for full sharding of a LoRA model (its frozen base stays replicated).
  Sharder(std::shared_ptr<Distributed> dist, model::Transformer model, ShardOptions opts);
  ~Sharder();
  Sharder(const Sharder&) = delete;
  Sharder& operator=(const Sharder&) = delete;

  /// After the last micro-batch's backward (all ranks): reduce-scatters what backward has not,
  /// averages over ranks, clips to `max_grad_norm` (<= 0: no clipping) on the global norm and, when
  /// that norm is finite, steps AdamW (learning rate `lr`) on the local slices and gathers the
  /// replicated units back. Returns the norm before clipping; gradients are cleared either way.
  double step(double lr, double max_grad_norm);
  /// Clears every gradient (the parameters' and the shards').
  void zero_grad();

  /// Gathers every block unit (float32 masters' dtype) and keeps it whole until release_full()
  /// (saving the final weights, copying them). Collective. A no-op without block units.
  void gather_full();
  void release_full();

  LocalShards local_shards() const;
  /// Fills every local slice (weights, moments, steps) from a checkpoint: read_into(key, begin,
  /// dst) must fill dst [n] with elements [begin, begin + n) of global tensor `key` (keys as in
  /// ShardPiece); step(param) is the AdamW step count of a parameter (0: no moments to read).
  void load_shards(const std::function<void(const std::string&, int64_t, torch::Tensor)>& read_into,
                   const std::function<int64_t(const std::string&)>& step);

  /// Bytes of parameters + gradients + optimizer state this rank holds now, summed over the storages
  /// of the actual tensors (model parameters, their gradients, shards, moments, gathered buffers).
  int64_t held_bytes() const;
  /// The largest held_bytes() seen (sampled after every gather, backward and step).
  int64_t peak_held_bytes() const { return peak_bytes_; }
  void reset_peak() { peak_bytes_ = held_bytes(); }
  const ShardTraffic& traffic() const { return traffic_; }
  int num_units() const { return static_cast<int>(units_.size()); }
  int num_block_units() const;
  std::string describe() const;

  // Used by the block runner (sharded_block.cpp).
  struct Unit;
  bool is_whole(int unit) const;
  /// Whole parameters of `unit` (waits for a prefetch or gathers now). `low_precision` (with
  /// bf16_gather only): the parameters become bf16 views of the bf16 all-gather instead of its
  /// float32 upcast: the rollout's copy under bf16 autocast, half the bytes, the same products
  /// (autocast would cast the float32 upcast back to the same bf16 values).
  void materialize(int unit, bool low_precision = false);
  bool is_low_precision(int unit) const;  // whole as bf16 views (materialize(unit, true))
  void prefetch(int unit);       // launches the gather of `unit` asynchronously (no-op if whole/underway)
  void release(int unit);        // frees the gathered parameters of `unit` unless pinned
  /// Forwards without grad (generation, old-policy and reference log-probs) keep each block they
  /// gathered until the next training forward or step(): one whole copy per rollout phase, freed
  /// before the update (verl's hybrid engine), instead of a gather per block per decoded token.
  void keep_for_inference(int unit) { inference_kept_.push_back(unit); }
  void release_inference();
  /// Reduce-scatters the gradients of `unit`'s entries (one per entry, undefined = zeros), computed
  /// by one rank's backward of the block: returns this rank's slice of their sum [S] float32.
  torch::Tensor reduce_scatter_block(int unit, std::vector<torch::Tensor> grads);
  int block_unit(size_t layer) const { return layer < layer_unit_.size() ? layer_unit_[layer] : -1; }
  const ShardOptions& options() const { return opts_; }
  torch::Tensor block_shard(int unit) const;
  /// A unit's layout and this rank's slice (the sharded reference model copies the block layout).
  const Unit& unit(int unit) const { return *units_[static_cast<size_t>(unit)]; }
  std::vector<torch::Tensor> unit_params(int unit) const;
  void sample_peak(int64_t extra = 0);

 private:
  void build_units();
  void step_unit(Unit& u, double lr);
  void gather_into_params(Unit& u);

  std::shared_ptr<Distributed> dist_;
  model::Transformer model_;
  ShardOptions opts_;
  int world_ = 1, rank_ = 0;
  std::vector<std::unique_ptr<Unit>> units_;
  std::vector<int> layer_unit_;  // unit of each decoder block (-1: none)
  bool pinned_ = false;
  std::vector<int> inference_kept_;
  int64_t peak_bytes_ = 0;
  ShardTraffic traffic_;
};

/// Reduce-scatter of a padded flat buffer `in` [world * S] into `out` [S] (SUM). Gloo's CPU
/// reduce_scatter is missing or partial across torch versions, so it is emulated for every
/// backend by one all-reduce of `in` followed by taking this rank's slice (twice the bytes of a
/// true reduce-scatter; the same code on NCCL). `in` is overwritten.
void reduce_scatter_flat(Distributed& d, torch::Tensor& in, torch::Tensor& out);
/// All-gather of `shard` [S] into `out` [world * S] (rank r's shard at [r*S, (r+1)*S)), launched
/// asynchronously: c10d allgather into the world chunk views of `out` (Gloo and NCCL). Returns
/// null when there is no process group (out is filled at once). Every launch, with or without a
/// group, opens an at::RecordFunction named kAllGatherLaunchRecord on the calling thread.
inline constexpr const char* kAllGatherLaunchRecord = "grpo::sharded_gather_launch";
c10::intrusive_ptr<c10d::Work> all_gather_flat(Distributed& d, const torch::Tensor& shard, torch::Tensor& out);

}  // namespace grpo::dist
