#pragma once
// Transport for dedicated rollout ranks (issue 22, distributed.rollout_ranks: not wired into the
// trainer yet): ranks [0, W - N) train, ranks [W - N, W) only generate and score. The trainers send
// their weights to the rollout ranks after each update; the rollout ranks send samples back.
// Everything goes over the run's c10d group (Gloo on the CPU, NCCL between GPUs) and is bounded by
// distributed.timeout_s like every other collective.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "grpo/dist/distributed.h"

namespace grpo::dist {

/// Which rank does what with `rollout_ranks` = N of `world` ranks: trainers first (rank 0, which
/// logs and checkpoints, is always one), rollout ranks last. Throws grpo::InputError unless
/// 0 <= N < world (at least one trainer).
struct RankRoles {
  int world = 1;
  int rollout_ranks = 0;
  RankRoles(int world_size, int num_rollout_ranks);
  int num_trainers() const { return world - rollout_ranks; }
  bool is_rollout(int rank) const { return rank >= num_trainers(); }
  /// The trainer that receives the samples of global prompt index `i` when each trainer trains on
  /// `per_trainer` prompts: i / per_trainer (the data order stays keyed by the global index).
  int trainer_of(int64_t global_index, int64_t per_trainer) const;
  /// The rollout rank that generates global prompt index `i`: the rollout ranks take turns.
  int rollout_rank_of(int64_t global_index) const;
};

/// Point-to-point bytes: a length (int64) then the payload (uint8), both with `tag`. Blocks until
/// the peer has them (send) or they arrived (recv); throws grpo::Error on a dead peer or timeout.
void send_bytes(Distributed& d, const std::string& bytes, int dst, int tag);
std::string recv_bytes(Distributed& d, int src, int tag);

/// The weights of `root` (a trainer) into every rank's `params` (same shapes and order on every
/// rank), without autograd. On CUDA the values travel in bf16 (half the bytes; the rollout samples in
/// bf16 there anyway) and the receivers round them into their tensors' dtype; on the CPU they travel
/// in the tensors' own dtype (float32: the rollout then samples with the trainer's exact weights).
/// `root`'s own tensors are never modified. Returns the bytes each rank received.
int64_t broadcast_weights(Distributed& d, const std::vector<torch::Tensor>& params, int root);

}  // namespace grpo::dist
