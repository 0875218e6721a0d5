// Worker program of tests/dist/rollout_ranks_test.cpp, started as 2 processes by `grpo launch`:
// rank 0 plays a trainer, rank 1 a rollout rank (distributed.rollout_ranks: 1). Rank 0 broadcasts
// its weights (float32 on the CPU) with broadcast_weights, sends byte messages to rank 1 with
// send_bytes; rank 1 answers each with its own checksum of what it received and writes the weights
// it ends with to OUT.rank1.txt (rank 0 writes its own to OUT.rank0.txt), one value per line.
//
//   dist_rollout_ranks_worker --out PREFIX [--timeout S]
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>

#include "grpo/dist/distributed.h"
#include "grpo/dist/rollout_ranks.h"
#include "grpo/util/error.h"

namespace {

using grpo::dist::Distributed;

// FNV-1a over the bytes: the receiver's independent account of what arrived.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The messages: empty, one byte, embedded NULs, and one bigger than a typical socket buffer.
std::vector<std::string> messages() {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) % 251);
  return {"", "x", std::string("a\0b\0c", 5), big};
}

void write_values(const std::string& path, const std::vector<torch::Tensor>& ps) {
  std::ofstream out(path);
  out << std::setprecision(9);
  for (const auto& p : ps) {
    auto f = p.to(torch::kFloat32).contiguous().view(-1);
    for (int64_t i = 0; i < f.numel(); ++i) out << f[i].item<float>() << "\n";
  }
}

int run(int argc, char** argv) {
  std::string out;
  double timeout = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--out") out = argv[i + 1];
    else if (k == "--timeout") timeout = std::stod(argv[i + 1]);
    else throw grpo::InputError("unknown flag " + k);
  }
  grpo::config::DistributedConfig cfg;
  cfg.timeout_s = timeout;
  auto d = Distributed::create(cfg, "cpu");
  GRPO_REQUIRE(d->world_size() == 2, "run with 2 processes");
  grpo::dist::RankRoles roles(d->world_size(), 1);
  const int me = d->rank();
  // Parameters of a small model in two dtypes: the trainer's are random, the rollout rank's zeros.
  torch::manual_seed(11);
  std::vector<torch::Tensor> ps = {torch::randn({7, 5}), torch::randn({33}), torch::randn({2, 3, 4}).to(torch::kFloat64)};
  if (roles.is_rollout(me))
    for (auto& p : ps) p.zero_();
  const auto bytes = grpo::dist::broadcast_weights(*d, ps, /*root=*/0);
  write_values(out + ".rank" + std::to_string(me) + ".txt", ps);
  int tag = 1;
  for (const auto& msg : messages()) {
    if (me == 0) {
      grpo::dist::send_bytes(*d, msg, 1, tag);
      const auto reply = grpo::dist::recv_bytes(*d, 1, tag + 1000);
      if (reply != std::to_string(fnv1a(msg))) throw grpo::Error("reply " + reply + " for message " + std::to_string(tag));
    } else {
      const auto got = grpo::dist::recv_bytes(*d, 0, tag);
      grpo::dist::send_bytes(*d, std::to_string(fnv1a(got)), 0, tag + 1000);
    }
    ++tag;
  }
  d->barrier();
  std::cout << "rank " << me << ": done, " << bytes << " weight bytes\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dist_rollout_ranks_worker: error: " << e.what() << "\n";
    return 1;
  }
}
