#pragma once
// Data-parallel gradient averaging, as PyTorch DDP does it: parameters are grouped into buckets of
// about ddp_bucket_cap_mb; when every gradient of a bucket has been accumulated during backward,
// the bucket is flattened and its all-reduce launched asynchronously, so communication overlaps
// the rest of backward. synchronize() (before clipping and the optimizer step) launches what is
// left, waits, divides by the world size and writes the averages back into .grad.
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpo/dist/distributed.h"

namespace torch::autograd {
struct Node;
}

namespace grpo::dist {

struct GradReducerOptions {
  int64_t bucket_bytes = 25ll << 20;  // bytes of gradient per all-reduce (DDP's bucket_cap_mb)
  bool overlap = true;                // launch buckets from backward hooks; false = all after backward

  /// distributed.ddp_bucket_cap_mb (MiB, as DDP's bucket_cap_mb; at least one byte) and
  /// distributed.overlap_grad_reduce: what the trainer builds its reducer with.
  static GradReducerOptions from_config(const config::DistributedConfig& cfg);
};

class GradientReducer {
 public:
  /// `params`: the trainable parameters, in the same order on every rank (e.g.
  /// module->parameters()); those without requires_grad are skipped. Buckets are filled in
  /// reverse order (gradients arrive roughly last layer first) and never mix dtypes or devices.
  /// At world size 1 nothing is registered and synchronize() does nothing.
  GradientReducer(std::shared_ptr<Distributed> dist, std::vector<torch::Tensor> params,
                  GradReducerOptions opts = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// With gradient accumulation, set false for every micro-batch but the last (like DDP's
  /// no_sync): hooks then only accumulate locally. Default true.
  void set_sync(bool sync);

  /// Launches every bucket not yet launched (in bucket order, identical on all ranks), waits for
  /// all, and replaces each .grad by its average over ranks. A parameter without a gradient on
  /// this rank contributes zeros (and gets the average). Throws grpo::Error when a peer fails or
  /// times out; grpo::InternalError when a gradient was accumulated twice with sync on.
  void synchronize();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  /// Elements in each bucket, in launch order.
  std::vector<int64_t> bucket_numels() const;
  /// Seconds synchronize() last spent blocked on communication (excludes launches in hooks).
  double last_wait_seconds() const { return last_wait_s_; }
  /// Buckets whose all-reduce has been launched in the current step (reset by synchronize()).
  /// Read right after backward() returns: num_buckets() with overlap (every hook fired), 0
  /// without. Callable from inside backward (a tensor hook), to see launches mid-backward.
  int launched_this_step();
  /// One line for the log: buckets, their sizes, the cap and whether they overlap backward.
  std::string describe() const;

 private:
  struct Bucket {
    std::vector<int> params;  // indices into params_
    std::vector<int64_t> offsets;
    torch::Tensor flat;       // [numel], dtype and device of its parameters
    int pending = 0;          // gradients still to arrive this step
    c10::intrusive_ptr<c10d::Work> work;
    bool launched = false;
  };
  void on_grad_ready(int param_index);
  void launch_ready_prefix();  // launches buckets next_launch_.. that are complete, in order
  void launch(Bucket& b);
  void reset_step();

  std::shared_ptr<Distributed> dist_;
  GradReducerOptions opts_;
  std::vector<torch::Tensor> params_;
  std::vector<int> bucket_of_;
  std::vector<char> ready_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool sync_ = true;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
  std::mutex mu_;
  double last_wait_s_ = 0;
  std::string hook_error_;
};

}  // namespace grpo::dist
