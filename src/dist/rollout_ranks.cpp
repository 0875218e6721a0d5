#include "grpo/dist/rollout_ranks.h"

#include <cstring>

#include "grpo/util/error.h"

namespace grpo::dist {

RankRoles::RankRoles(int world_size, int num_rollout_ranks) : world(world_size), rollout_ranks(num_rollout_ranks) {
  GRPO_REQUIRE(num_rollout_ranks >= 0 && num_rollout_ranks < world_size, "distributed.rollout_ranks = ",
               num_rollout_ranks, " of ", world_size, " ranks: at least one rank must train");
}

int RankRoles::trainer_of(int64_t global_index, int64_t per_trainer) const {
  GRPO_REQUIRE(per_trainer > 0 && global_index >= 0 && global_index < per_trainer * num_trainers(),
               "trainer_of: prompt ", global_index, " outside ", num_trainers(), " trainers x ", per_trainer);
  return static_cast<int>(global_index / per_trainer);
}

int RankRoles::rollout_rank_of(int64_t global_index) const {
  GRPO_REQUIRE(rollout_ranks > 0, "rollout_rank_of: no rollout ranks");
  return num_trainers() + static_cast<int>(global_index % rollout_ranks);
}

namespace {

// The device point-to-point tensors live on: the GPU for NCCL, the CPU for Gloo.
torch::Device p2p_device(const Distributed& d) {
  return d.backend() == config::DistBackend::NCCL ? d.device() : torch::Device(torch::kCPU);
}

void send_tensor(Distributed& d, torch::Tensor t, int dst, int tag, const char* what) {
  std::vector<at::Tensor> v{t.to(p2p_device(d)).contiguous()};
  d.wait(d.c10d_backend()->send(v, dst, tag), what);
}

void recv_tensor(Distributed& d, torch::Tensor& t, int src, int tag, const char* what) {
  std::vector<at::Tensor> v{t};
  d.wait(d.c10d_backend()->recv(v, src, tag), what);
}

}  // namespace

void send_bytes(Distributed& d, const std::string& bytes, int dst, int tag) {
  GRPO_REQUIRE(d.has_group(), "send_bytes: no process group (world size 1)");
  auto len = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64);  // [1]
  send_tensor(d, len, dst, tag, "send (length)");
  if (bytes.empty()) return;
  auto payload = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);  // [n]
  std::memcpy(payload.data_ptr(), bytes.data(), bytes.size());
  send_tensor(d, payload, dst, tag, "send (payload)");
}

std::string recv_bytes(Distributed& d, int src, int tag) {
  GRPO_REQUIRE(d.has_group(), "recv_bytes: no process group (world size 1)");
  const auto dev = p2p_device(d);
  auto len = torch::zeros({1}, torch::TensorOptions(dev).dtype(torch::kInt64));
  recv_tensor(d, len, src, tag, "recv (length)");
  const int64_t n = len.cpu().item<int64_t>();
  GRPO_CHECK(n >= 0, "recv_bytes: negative length ", n);
  if (n == 0) return {};
  auto payload = torch::empty({n}, torch::TensorOptions(dev).dtype(torch::kUInt8));
  recv_tensor(d, payload, src, tag, "recv (payload)");
  payload = payload.cpu().contiguous();
  return std::string(static_cast<const char*>(payload.data_ptr()), static_cast<size_t>(n));
}

int64_t broadcast_weights(Distributed& d, const std::vector<torch::Tensor>& params, int root) {
  if (!d.has_group()) return 0;
  torch::NoGradGuard ng;
  const bool bf16 = d.device().is_cuda();
  // Copies: the broadcast writes into its buffers on every rank, root included, and root's
  // float32 master weights must not be rounded to bf16.
  std::vector<torch::Tensor> wire;
  int64_t bytes = 0;
  for (const auto& p : params) {
    wire.push_back(bf16 ? p.detach().to(torch::kBFloat16) : p.detach().clone());
    bytes += static_cast<int64_t>(wire.back().nbytes());
  }
  d.broadcast(wire, root);
  if (d.rank() != root)
    for (size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(wire[i]);  // rounds into p's dtype
  return bytes;
}

}  // namespace grpo::dist
