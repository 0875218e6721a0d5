// StepMetrics: each reduction over micro-batches and over two real Gloo ranks (two threads of this
// process, each its own rank), against values computed by hand; tensor values reach the host in one
// copy, with no .item() per value.
#include <gtest/gtest.h>

#include <ATen/record_function.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <exception>
#include <thread>

#include "grpo/dist/distributed.h"
#include "grpo/train/step_metrics.h"
#include "grpo/util/error.h"

namespace {

using grpo::train::Reduction;
using grpo::train::StepMetrics;

torch::Tensor f32(float v) { return torch::tensor(v, torch::kFloat32).reshape({}); }

TEST(StepMetrics, EachReductionOverMicroBatches) {
  StepMetrics m;
  // Two micro-batches of a token mean: 1 of 10 tokens, then 1 of 2: 2 / 12, not the mean of 0.1 and 0.5.
  m.add_mean("clip", f32(1), f32(10));
  m.add_mean("clip", f32(1), f32(2));
  m.add_sum("tokens", f32(10));
  m.add_sum("tokens", 2.0);
  m.add_min("len/min", 7);
  m.add_min("len/min", 3);
  m.add_min("len/min", 5);
  m.add_max("len/max", -4);
  m.add_max("len/max", -2);
  m.add_mean("reward", 0.25);  // a plain value: count 1
  m.add_mean("empty", f32(0), f32(0));
  EXPECT_EQ(m.kind("clip"), Reduction::MEAN);
  EXPECT_EQ(m.kind("tokens"), Reduction::SUM);
  EXPECT_EQ(m.kind("len/min"), Reduction::MIN);
  EXPECT_EQ(m.kind("len/max"), Reduction::MAX);
  auto v = m.local();
  EXPECT_EQ(v.at("clip"), 2.0 / 12.0);
  EXPECT_EQ(v.at("tokens"), 12.0);
  EXPECT_EQ(v.at("len/min"), 3.0);
  EXPECT_EQ(v.at("len/max"), -2.0);
  EXPECT_EQ(v.at("reward"), 0.25);
  EXPECT_EQ(v.count("empty"), 0u) << "a mean over no tokens is left out";
  EXPECT_EQ(v.size(), 5u);
  EXPECT_EQ(m.value("tokens"), 12.0);
  EXPECT_THROW(m.value("empty"), grpo::InternalError);
  EXPECT_THROW(m.value("missing"), grpo::InternalError);
  // A key keeps the reduction it was first recorded with.
  EXPECT_THROW(m.add_max("len/min", 1), grpo::InternalError);
  EXPECT_THROW(m.add_sum("clip", 1.0), grpo::InternalError);
  // World size 1 (no process group): reduce is the local values.
  EXPECT_EQ(m.reduce(nullptr), v);
}

TEST(StepMetrics, TensorSumsEqualTheDoubleLoopOverItems) {
  // What the trainer did before: `double s = 0; s += x.item<double>();` per micro-batch, and a mean
  // as two such sums divided once. Float32 values that are inexact in binary, so the order matters.
  const std::vector<float> xs = {0.1f, 0.2f, 0.3f, 1e-8f, -0.7f, 1e7f, 0.3f};
  const std::vector<float> ws = {3.f, 5.f, 1.f, 2.f, 7.f, 1.f, 4.f};
  double s = 0, ms = 0, mc = 0;
  StepMetrics m;
  for (size_t i = 0; i < xs.size(); ++i) {
    s += static_cast<double>(xs[i]);
    ms += static_cast<double>(xs[i] * ws[i]);
    mc += static_cast<double>(ws[i]);
    m.add_sum("s", f32(xs[i]));
    m.add_mean("m", f32(xs[i] * ws[i]), f32(ws[i]));
  }
  EXPECT_EQ(m.value("s"), s);
  EXPECT_EQ(m.value("m"), ms / mc);
  // A tensor sum with a double count (SFT's token_prob_above_half).
  StepMetrics t;
  t.add_mean("p", f32(3), 4.0);
  EXPECT_EQ(t.value("p"), 0.75);
}

// Counts the operators run on this thread between construction and count().
class OpCounter {
 public:
  OpCounter() {
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          names().emplace_back(fn.name());
          return nullptr;
        }).scopes({at::RecordScope::FUNCTION}));
    names().clear();
  }
  ~OpCounter() { at::removeCallback(handle_); }
  int64_t count(const std::string& name) const { return std::count(names().begin(), names().end(), name); }

 private:
  static std::vector<std::string>& names() {
    static thread_local std::vector<std::string> n;
    return n;
  }
  at::CallbackHandle handle_;
};

TEST(StepMetrics, FetchIsOneCopyAndNoItemPerValue) {
  const auto device = torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  StepMetrics m;
  for (int k = 0; k < 4; ++k) {
    m.add_sum("loss", torch::full({}, 0.5f + k, torch::TensorOptions(device)));
    m.add_mean("entropy", torch::full({}, 2.0f * k, torch::TensorOptions(device)),
               torch::full({}, 3.0f, torch::TensorOptions(device)));
  }
  m.add_mean("time/update", 1.5);
  OpCounter ops;
  auto v = m.local();
  EXPECT_EQ(ops.count("aten::_local_scalar_dense"), 0) << "an .item() per value";
  EXPECT_EQ(ops.count("aten::stack"), 1) << "the values are gathered into one tensor";
  if (device.is_cuda()) EXPECT_EQ(ops.count("aten::_to_copy"), 1) << "one device-to-host copy";
  EXPECT_EQ(v.at("loss"), 0.5 + 1.5 + 2.5 + 3.5);
  EXPECT_EQ(v.at("entropy"), (0.0 + 2.0 + 4.0 + 6.0) / 12.0);
  EXPECT_EQ(v.at("time/update"), 1.5);
  // Nothing left on the device: a second read copies nothing.
  OpCounter again;
  EXPECT_EQ(m.local(), v);
  EXPECT_EQ(again.count("aten::stack"), 0);
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(s);
    return 29517;
  }
  ::close(s);
  return ntohs(a.sin_port);
}

// Runs fill(rank, metrics) on two Gloo ranks (one thread each) and returns each rank's reduce().
std::vector<std::map<std::string, double>> reduce_on_two_ranks(
    const std::function<void(int, StepMetrics&)>& fill) {
  grpo::config::DistributedConfig cfg;
  cfg.timeout_s = 30;
  const int port = free_port();
  std::vector<std::map<std::string, double>> out(2);
  std::vector<std::exception_ptr> err(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      try {
        grpo::dist::LaunchEnv env;
        env.rank = env.local_rank = r;
        env.world_size = env.local_world_size = 2;
        env.master_port = port;
        auto d = grpo::dist::Distributed::create(cfg, "cpu", env);
        StepMetrics m;
        fill(r, m);
        out[static_cast<size_t>(r)] = m.reduce(d.get());
        d->barrier();
      } catch (...) {
        err[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : ranks) t.join();
  for (auto& e : err)
    if (e) std::rethrow_exception(e);
  return out;
}

TEST(StepMetrics, EachReductionOverTwoGlooRanks) {
  auto got = reduce_on_two_ranks([](int rank, StepMetrics& m) {
    if (rank == 0) {
      m.add_sum("num_tokens", f32(30));
      m.add_mean("clip", f32(1), f32(10));  // rank 0: (1 + 1) / (10 + 2) = 1/6
      m.add_mean("clip", f32(1), f32(2));
      m.add_min("len/min", 4);
      m.add_max("len/max", 9);
      m.add_mean("only_rank0", 0.5);
      m.add_mean("kl", f32(3), f32(4));
    } else {
      m.add_sum("num_tokens", 12.0);
      m.add_mean("clip", f32(3), f32(4));  // rank 1: 3/4
      m.add_min("len/min", 2);
      m.add_max("len/max", 11);
      m.add_sum("rewards/code/status/timeout", 5.0);  // a counter only rank 1 saw
      m.add_min("only_rank1/min", -3);
      m.add_mean("kl", f32(0), f32(0));  // no tokens on rank 1: the mean is rank 0's alone
    }
  });
  const std::map<std::string, double> want = {
      {"num_tokens", 42.0},
      {"clip", (1.0 / 6.0 + 0.75) / 2.0},  // the mean over ranks of each rank's token mean
      {"len/min", 2.0},
      {"len/max", 11.0},
      {"only_rank0", 0.5},
      {"kl", 0.75},
      {"rewards/code/status/timeout", 5.0},
      {"only_rank1/min", -3.0},
  };
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(got[static_cast<size_t>(r)].size(), want.size()) << "rank " << r;
    for (const auto& [k, v] : want) EXPECT_DOUBLE_EQ(got[static_cast<size_t>(r)].at(k), v) << "rank " << r << " " << k;
  }
}

TEST(StepMetrics, SumAndMeanOverTwoGlooRanks) {
  // The common step: the same keys on every rank.
  auto got = reduce_on_two_ranks([](int rank, StepMetrics& m) {
    m.add_mean("loss", rank == 0 ? 1.0 : 3.0);
    m.add_sum("tokens_per_second", rank == 0 ? 100.0 : 50.0);
  });
  for (const auto& g : got) {
    EXPECT_EQ(g.at("loss"), 2.0);
    EXPECT_EQ(g.at("tokens_per_second"), 150.0);
    EXPECT_EQ(g.size(), 2u);
  }
}

}  // namespace
