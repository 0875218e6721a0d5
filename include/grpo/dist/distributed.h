#pragma once
// The multi-process data-parallel context: one process per GPU (or several CPU processes), joined
// through PyTorch's c10d (TCPStore rendezvous; NCCL between GPUs, Gloo between CPU processes).
// Every collective here is bounded by distributed.timeout_s: a peer that dies or hangs turns into
// a grpo::Error on the survivors instead of a hang.
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/train_config.h"
#include "grpo/dist/launch_env.h"

namespace grpo::dist {

enum class ReduceOp { SUM, MEAN, MIN, MAX };

/// "nccl" / "gloo" / "none" (world size 1 without a process group).
std::string backend_name(config::DistBackend b);

/// True when this LibTorch build has the NCCL backend compiled in (USE_C10D_NCCL and nccl.h found).
bool nccl_available();

class Distributed {
 public:
  /// Joins the run described by `env` (see read_launch_env). `device_spec` is model.device: "auto"
  /// (cuda:LOCAL_RANK when CUDA is available, else cpu), "cpu", "cuda" (= cuda:LOCAL_RANK) or
  /// "cuda:N" (only with one process per node). backend auto = nccl for CUDA, gloo for CPU.
  /// World size 1 creates no process group (collectives are identities) unless `force_group`
  /// (used to exercise NCCL/Gloo on one device). Rank 0 serves the TCPStore on MASTER_PORT
  /// unless torchrun's agent already does. Sets the current CUDA device.
  /// Throws grpo::InputError for an impossible combination (nccl on CPU, LOCAL_RANK beyond the
  /// visible GPUs, NCCL not compiled in) and grpo::Error when the rendezvous fails or times out.
  static std::shared_ptr<Distributed> create(const config::DistributedConfig& cfg, const std::string& device_spec,
                                             const LaunchEnv& env, bool force_group = false);
  /// Same, reading the environment.
  static std::shared_ptr<Distributed> create(const config::DistributedConfig& cfg,
                                             const std::string& device_spec = "auto");

  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  const LaunchEnv& env() const { return env_; }
  /// The device this rank computes on (cuda:LOCAL_RANK or cpu).
  torch::Device device() const { return device_; }
  /// Resolved backend: NCCL or GLOO; AUTO means no process group (world size 1).
  config::DistBackend backend() const { return backend_; }
  double timeout_s() const { return timeout_s_; }
  /// The c10d process group (null at world size 1 without force_group), for collectives not
  /// wrapped here. Its default backend is backend().
  c10::intrusive_ptr<c10d::ProcessGroup> process_group() const { return pg_; }
  c10::intrusive_ptr<c10d::Backend> c10d_backend() const { return backend_impl_; }
  bool has_group() const { return static_cast<bool>(backend_impl_); }

  /// In-place all-reduce of `t` (any shape; float/double/int64 ...). MEAN = SUM / world size
  /// (Gloo has no AVG). A tensor on the wrong device for the backend is staged through one that
  /// is not (CPU for Gloo, device() for NCCL). Throws grpo::Error naming the op, this rank and the
  /// timeout when a peer dies or the timeout passes.
  void all_reduce(torch::Tensor& t, ReduceOp op);
  /// Scalar convenience (one collective).
  double all_reduce(double v, ReduceOp op);
  /// Reduces each value of a metrics map across ranks, in one collective (float64). Every rank
  /// must pass the same keys; a different key set throws grpo::Error naming this rank's keys.
  std::map<std::string, double> all_reduce(const std::map<std::string, double>& metrics, ReduceOp op);

  /// Global normaliser for a loss averaged over the whole global batch while gradients are
  /// averaged over ranks (DDP semantics): returns sum_over_ranks(local_count) / world_size, so
  /// that loss_local = sum_local / global_normalizer(count_local) gives, after gradient
  /// averaging, d(sum_global / count_global). This is TRL's `num_items_in_batch /
  /// num_processes` for loss_type dapo. [] float64 on CPU.
  double global_normalizer(double local_count);

  /// Copies rank `root`'s values of `tensors` (parameters and buffers, in the same order on every
  /// rank) into every rank's tensors, bucketed (~bucket_bytes per collective), without autograd.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0, int64_t bucket_bytes = 25 << 20);

  /// Every rank waits until all have arrived (bounded by the timeout). Call it before a normal
  /// exit: rank 0 serves the TCPStore, and a rank still talking to it would fail.
  void barrier();

  /// Gathers one string per rank (any lengths), through the TCPStore: result[r] is rank r's.
  std::vector<std::string> all_gather_string(const std::string& s);

  /// All-gathers `fingerprint` (see run_fingerprint) and throws grpo::InputError naming the
  /// first rank whose fingerprint differs from rank 0's and which part differs (grpo version,
  /// git revision, resolved config). Call once at start, before any training collective.
  void check_same_fingerprint(const std::string& fingerprint);

  /// Waits for an async c10d work item, turning a failure or timeout into grpo::Error that names
  /// `what`, this rank and the timeout.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);

 private:
  Distributed() = default;
  torch::Tensor staged(const torch::Tensor& t) const;
  void exchange_host_labels(const std::string& where);  // fills hosts_ (create())
  // The rendezvous error: which ranks arrived (with their hosts) and which did not.
  std::string missing_ranks_message(const std::string& where, const std::vector<std::string>& keys,
                                    const std::string& cause);
  std::string ranks_and_hosts() const;                   // "rank 0 on A, rank 1 on B", for errors

  LaunchEnv env_;
  torch::Device device_{torch::kCPU};
  config::DistBackend backend_ = config::DistBackend::AUTO;
  double timeout_s_ = 300;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  c10::intrusive_ptr<c10d::Backend> backend_impl_;
  int64_t gather_round_ = 0;
  std::vector<std::string> hosts_;  // host_label() of every rank, by rank
};

}  // namespace grpo::dist
