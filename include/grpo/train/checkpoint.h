#pragma once
// Checkpoints that survive crashes and reshard. Layout of <output_dir>/checkpoints/:
//   checkpoint-00000120/          one directory per saved step (zero-padded so names sort by step)
//     shards.json                 where every element of every tensor is (train/shard_io.h)
//     model.safetensors           weights, when one rank holds them all (sharding none): an ordinary
//                                 safetensors file of named tensors (F32 / BF16 / F16 as held)
//     model-RRRRR-of-NNNNN.safetensors       rank R's weight pieces (sharded modes)
//     optimizer[-RRRRR-of-NNNNN].safetensors AdamW exp_avg / exp_avg_sq pieces (steps in shards.json)
//     rng.pt                      CPU generator state and, when present, each CUDA device's, per rank
//     state.json                  step, stage, data-loader position, scheduler, extra loop state
//     config.yaml                 the resolved config of the run
//     metrics.jsonl               the metrics logged up to this step
//     manifest.json               SHA-256 and size of every file above
//     COMPLETE                    marker, written last inside the directory
//   latest                        "checkpoint-00000120\n", replaced atomically after each save
//   .tmp-checkpoint-...           a save in progress (or one a crash interrupted): never loaded
// A save is collective: rank 0 makes a .tmp directory, every rank writes and fsyncs its own shard
// files there and reports them (names, pieces, sizes, SHA-256) in one all-gather, then rank 0
// writes the metadata and small files, fsyncs each file and the directory, renames it to its final
// name, fsyncs the parent, replaces `latest` and prunes old checkpoints; a last all-gather tells
// every rank the outcome. A crash at any point leaves either the previous state or the new complete
// checkpoint. Loading verifies the marker, every checksum and the metadata against the shard files.
// Checkpoints of the first format (model.safetensors + optimizer.pt, no shards.json) still load.
// See docs/checkpoints.md.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "grpo/data/loader.h"
#include "grpo/model/weights_io.h"
#include "grpo/train/shard_io.h"

namespace grpo::dist {
class Distributed;
}

namespace grpo::train {

/// Random-number generator states of one rank.
struct RngState {
  torch::Tensor cpu;                // at::Generator::get_state() of the default CPU generator, uint8
  std::vector<torch::Tensor> cuda;  // one per visible CUDA device, in device order; empty without CUDA
};

/// Captures the default CPU generator's state, and each CUDA device's when CUDA is available.
RngState capture_rng_state();
/// Restores what capture_rng_state() returned. Throws grpo::InputError when the state has CUDA
/// entries for more devices than are visible now.
void restore_rng_state(const RngState& s);

/// Everything the training loop needs to continue where it stopped, apart from the weights and the
/// optimizer (which are passed separately because they are large and owned by the model).
struct TrainState {
  int64_t step = 0;                       // optimizer steps completed
  std::string stage = "grpo";             // training stage (grpo, sft, ...)
  data::LoaderPosition data;              // next prompt to draw
  nlohmann::json scheduler = nlohmann::json::object();  // scheduler state (e.g. {"kind", "warmup", "total"})
  std::string config_yaml;                // resolved config (config::dump_config)
  std::string metrics_jsonl;              // metrics.jsonl content up to this step
  nlohmann::json extra = nlohmann::json::object();      // any other loop state (counters, best score, ...)
  std::vector<RngState> rng;              // per rank (index = rank); rank 0's at least
};

/// Named tensors in a fixed order (model.named_parameters() / named_buffers()).
using NamedTensors = model::NamedTensors;

/// Saves step `state.step` under <output_dir>/checkpoints/ (layout above), then keeps only the
/// newest `keep_last` complete checkpoints (>= 1) and removes leftover .tmp directories. Weights are
/// copied to the CPU and written in their dtype (float32, bfloat16 or float16). `optimizer` may be
/// null (nothing saved). An existing checkpoint of the same step is replaced atomically. Returns the
/// checkpoint directory. Throws grpo::InputError when a file cannot be written (disk full, no
/// permission), leaving the previous checkpoints untouched.
std::string save_checkpoint(const std::string& output_dir, const TrainState& state, const NamedTensors& weights,
                            torch::optim::Optimizer* optimizer, int keep_last);

/// The collective save: every rank of `dist` (null: a single process) calls it with the pieces it
/// holds (`mine`; empty on ranks that write nothing); `state` matters on rank 0 only (it holds
/// every rank's RNG state). `sharding` ("none", "optimizer", "full") is recorded in shards.json.
/// Every rank returns the checkpoint directory, or every rank throws grpo::InputError naming the
/// rank and the problem (the .tmp directory is removed, the previous checkpoints stay).
std::string save_checkpoint(const std::string& output_dir, const TrainState& state, const LocalShards& mine,
                            dist::Distributed* dist, const std::string& sharding, int keep_last);

/// What one process of an unsharded run holds: every weight whole, and the AdamW state
/// (exp_avg, exp_avg_sq, step) of every parameter of `optimizer` that has one (optimizer may be
/// null). The optimizer's parameters must be among `weights` (matched by tensor identity).
LocalShards replicated_shards(const NamedTensors& weights, torch::optim::Optimizer* optimizer);

/// Fills every weight whole from `reader` (all present with their shapes, no extra weights in the
/// checkpoint) and, when `optimizer` (AdamW) is not null, its state: parameters with a recorded
/// step get exp_avg / exp_avg_sq / step, the others none (as before their first step). Any world
/// size and sharding mode wrote it: the pieces are reassembled. Throws grpo::InputError naming the
/// checkpoint and the weight.
void load_replicated(const ShardReader& reader, const NamedTensors& weights, torch::optim::Optimizer* optimizer);

/// What load_checkpoint returns.
struct LoadedCheckpoint {
  std::string path;
  TrainState state;
};

/// Verifies `checkpoint_dir` (COMPLETE marker, manifest, every file's size and SHA-256) and loads
/// it: `weights` are overwritten in place (copy_ keeps their device and dtype; every name must be
/// present with the same shape), the optimizer state is loaded when `optimizer` is not null. RNG
/// states are returned in state.rng, not applied (call restore_rng_state). Throws grpo::InputError
/// naming the checkpoint and the first problem: missing or mismatching file, corrupt content,
/// missing or extra weight, shape mismatch.
LoadedCheckpoint load_checkpoint(const std::string& checkpoint_dir, const NamedTensors& weights,
                                 torch::optim::Optimizer* optimizer);

/// Verifies `checkpoint_dir` and loads its TrainState (state.json, config.yaml, metrics.jsonl,
/// rng.pt) but no tensors: a sharded trainer then fills its own pieces through a ShardReader.
LoadedCheckpoint load_checkpoint_state(const std::string& checkpoint_dir);

/// Fills `weights` from a checkpoint or weights directory of either format (a sharded checkpoint of
/// any world size: its pieces reassembled; else model.safetensors). Every weight must be present
/// with its shape; other tensors (AdamW moments, extra buffers) are ignored. Used to load a
/// checkpoint as a policy (model.path, grpo model convert). Throws grpo::InputError naming the
/// directory and the weight.
void read_weights(const std::string& dir, const NamedTensors& weights);

/// True when `checkpoint_dir` has shards.json (the sharded format), false for the first format.
bool is_sharded_checkpoint(const std::string& checkpoint_dir);

/// Checks a checkpoint without loading it; returns "" when valid, else the first problem (for a
/// sharded one also the metadata against every shard file: verify_shards).
std::string verify_checkpoint(const std::string& checkpoint_dir);

/// The checkpoint to resume from: `resume` == "" -> nullopt (fresh start); "auto" -> the newest
/// valid checkpoint under <output_dir>/checkpoints/ (newest step first; a corrupt or incomplete one
/// is skipped with a warning naming it and why), nullopt when there is none; anything else is a
/// checkpoint directory that must be valid, or grpo::InputError names it and the problem.
std::optional<std::string> find_resume(const std::string& resume, const std::string& output_dir);

/// Complete checkpoint directories under <output_dir>/checkpoints/, oldest first, as (step, path).
/// Does not verify checksums (see verify_checkpoint).
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir);

/// Test seam: called by save_checkpoint on every rank with the step being saved right after that
/// rank's shard files are written, before anything marks the checkpoint complete (the point where a crash hurts
/// most). Empty (the default) in production; the crash-during-save test
/// (tests/e2e/kill_in_save_main.cpp) installs one that SIGKILLs the process. Not thread-safe:
/// set it before training starts.
using SaveHook = std::function<void(int64_t step)>;
void set_save_hook_for_testing(SaveHook hook);

/// SHA-256 of a file as 64 lowercase hex digits (nettle). Throws grpo::InputError when unreadable.
std::string sha256_file(const std::string& path);

}  // namespace grpo::train
