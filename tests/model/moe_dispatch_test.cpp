// The two implementations of the MoE layer's routed experts (moe.h: PLAIN = per-expert loop,
// GRPO = grpo::moe_permute / moe_gather / moe_grouped_gemm / moe_unpermute) compute the same
// function: equal in float64 on CPU (forward and every gradient, 1e-10 relative), and on CUDA
// within float32/bf16 rounding. The grouped path is seen to run through the dispatcher (op
// counts derived from the autograd Functions of kernels/moe.cpp), and on CUDA it runs forward and
// backward with no host synchronisation (CUDA sync debug mode set to error).
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "grpo/kernels/ops.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/model/moe.h"
#include "grpo/model/transformer.h"
#include "op_counter.h"
#include "test_support.h"

#ifdef GRPO_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace grpo::model {
namespace {

using testing::OpCounter;
using testing::rel_err;

struct Shape {
  int64_t experts, topk, batch, seq, hidden, inter;
  bool shared;  // a shared expert with its sigmoid gate, and sigmoid router scores
};
std::string describe(const Shape& s) {
  return "E=" + std::to_string(s.experts) + " k=" + std::to_string(s.topk) + " tokens=" + std::to_string(s.batch) +
         "x" + std::to_string(s.seq) + " D=" + std::to_string(s.hidden) + " I=" + std::to_string(s.inter) +
         (s.shared ? " +shared" : "");
}

config::ModelConfig moe_config(const Shape& s) {
  config::ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = s.hidden;
  c.intermediate_size = 2 * s.inter;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.moe.num_experts = s.experts;
  c.moe.num_experts_per_tok = s.topk;
  c.moe.moe_intermediate_size = s.inter;
  c.moe.norm_topk_prob = true;
  if (s.shared) {  // DeepSeek-style sigmoid scores with a shared expert (gated: spec_from_config)
    c.moe.n_shared_experts = 1;
    c.moe.scoring_func = config::RouterScoring::SIGMOID;
  }
  return c;
}

struct Result {
  torch::Tensor out, grad_x;                    // [B, T, D]
  std::map<std::string, torch::Tensor> grads;  // by parameter name (zeros where no gradient)
};

// Forward + backward of a loss touching every output element (a fixed random projection).
Result run(Moe& m, const torch::Tensor& x0, const torch::Tensor& proj) {
  m->zero_grad();
  auto x = x0.detach().clone().requires_grad_();
  auto [y, stats] = m->forward(x, torch::Tensor());
  (y * proj).sum().backward();
  Result r{y.detach(), x.grad(), {}};
  for (const auto& p : m->named_parameters())
    r.grads[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value());
  return r;
}

void expect_close(const Result& got, const Result& ref, double tol, const std::string& what) {
  EXPECT_LE(rel_err(got.out, ref.out), tol) << what << ": output";
  EXPECT_LE(rel_err(got.grad_x, ref.grad_x), tol) << what << ": gradient of x";
  ASSERT_EQ(got.grads.size(), ref.grads.size()) << what;
  for (const auto& [name, g] : ref.grads) {
    if (g.abs().max().item<double>() == 0) {  // an expert that received no token: exactly no gradient
      EXPECT_EQ(got.grads.at(name).abs().max().item<double>(), 0.0) << what << ": " << name;
      continue;
    }
    EXPECT_LE(rel_err(got.grads.at(name), g), tol) << what << ": " << name;
  }
}

// Odd sizes, experts left without tokens (E=8, 3 tokens x k=2), k=1 and k=E, a shared expert.
const Shape kShapes[] = {
    {5, 2, 2, 7, 24, 40, true}, {8, 2, 1, 3, 16, 24, false}, {4, 1, 3, 5, 20, 12, false},
    {3, 3, 2, 4, 12, 20, true}, {6, 2, 1, 1, 8, 8, false},  {7, 3, 2, 9, 33, 17, false},
};

TEST(MoeDispatch, GroupedEqualsLoopInFloat64OnCpu) {
  for (const auto& s : kShapes) {
    torch::manual_seed(11);
    Moe m(spec_from_config(moe_config(s)));
    m->to(torch::kFloat64);
    auto x = torch::randn({s.batch, s.seq, s.hidden}, torch::kFloat64);
    auto proj = torch::randn({s.batch, s.seq, s.hidden}, torch::kFloat64);
    m->impl = OpImpl::PLAIN;
    const Result loop = run(m, x, proj);
    m->impl = OpImpl::GRPO;
    const Result grouped = run(m, x, proj);
    expect_close(grouped, loop, 1e-10, describe(s));
    // The comparison is not empty: some experts got gradients.
    double expert_grad = 0;
    for (int64_t e = 0; e < s.experts; ++e)
      expert_grad += loop.grads.at("experts." + std::to_string(e) + ".down_proj.weight").abs().sum().item<double>();
    EXPECT_GT(expert_grad, 0.0) << describe(s);
  }
}

TEST(MoeDispatch, GroupedPathRunsTheGrpoMoeOpsAndTheLoopNone) {
  const Shape s = kShapes[0];
  torch::manual_seed(5);
  Moe m(spec_from_config(moe_config(s)));
  auto x = torch::randn({s.batch, s.seq, s.hidden});
  auto proj = torch::randn({s.batch, s.seq, s.hidden});
  {
    OpCounter c;
    m->impl = OpImpl::PLAIN;
    run(m, x, proj);
    EXPECT_EQ(c.with_prefix("grpo::"), 0) << "the loop must not call grpo:: ops";
    EXPECT_GT(c["aten::mul"], 0) << "the counter itself must see dispatcher calls";
  }
  OpCounter c;
  m->impl = OpImpl::GRPO;
  run(m, x, proj);
  // Forward: one permute, one gather, three grouped GEMMs (up, gate, down), one unpermute.
  EXPECT_EQ(c["grpo::moe_permute"], 1);
  EXPECT_EQ(c["grpo::moe_gather"], 1);
  EXPECT_EQ(c["grpo::moe_grouped_gemm"], 3);
  EXPECT_EQ(c["grpo::moe_unpermute"], 1);
  // Inner ops: each grouped GEMM runs _moe_gemm forward and again for its input gradient, plus one
  // weight gradient; gather's backward is an unpermute and unpermute's a gather plus the router
  // gradient.
  EXPECT_EQ(c["grpo::_moe_gemm"], 6);
  EXPECT_EQ(c["grpo::_moe_gemm_wgrad"], 3);
  EXPECT_EQ(c["grpo::_moe_gather"], 2);
  EXPECT_EQ(c["grpo::_moe_unpermute"], 2);
  EXPECT_EQ(c["grpo::_moe_router_grad"], 1);
}

TEST(MoeDispatch, ApplyKernelsKeepsTheLoopOnCpuAndGroupsOnCuda) {
  torch::manual_seed(3);
  Transformer t(spec_from_config(moe_config(kShapes[0])));
  config::KernelsConfig k;
  k.fused_ops = true;
  const std::string line = apply_kernels(*t, k, /*log_line=*/false);
  EXPECT_NE(line.find(" moe=loop "), std::string::npos) << line;
  auto ids = torch::randint(0, 32, {2, 6}, torch::kInt64);
  OpCounter c;
  t->forward(ids, torch::ones({2, 6}, torch::kInt64));
  EXPECT_EQ(c.with_prefix("grpo::moe"), 0);
  EXPECT_GT(c["grpo::swiglu"], 0) << "fused_ops is on for the experts' SwiGLU";
}

// ---- CUDA ------------------------------------------------------------------------------------

#define REQUIRE_CUDA()                                                                                 \
  do {                                                                                                 \
    if (!torch::cuda::is_available() || !kernels::have_cuda_kernels())                                 \
      GTEST_SKIP() << "no CUDA device" << (kernels::have_cuda_kernels() ? "" : " (and no CUDA kernels)"); \
  } while (0)

TEST(MoeDispatchCuda, GroupedEqualsLoopAndFloat64Reference) {
  REQUIRE_CUDA();
  for (const auto& s : kShapes) {
    for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
      torch::manual_seed(11);
      Moe cpu(spec_from_config(moe_config(s)));
      cpu->to(torch::kFloat64);
      auto x = torch::randn({s.batch, s.seq, s.hidden}, torch::kFloat64);
      auto proj = torch::randn({s.batch, s.seq, s.hidden}, torch::kFloat64);
      const Result ref = run(cpu, x, proj);  // float64 loop on CPU
      torch::manual_seed(11);
      Moe m(spec_from_config(moe_config(s)));
      m->to(torch::kCUDA, dt);
      auto xc = x.to(torch::kCUDA, dt), pc = proj.to(torch::kCUDA, dt);
      m->impl = OpImpl::PLAIN;
      const Result loop = run(m, xc, pc);
      m->impl = OpImpl::GRPO;
      const Result grouped = run(m, xc, pc);
      // float32: GEMMs of <= 40 terms in float32 (relative rounding ~ K * 6e-8 = 3e-6 each, three in
      // a row plus silu): 1e-4 leaves room and still fails on any misrouted row (O(1) errors).
      // bf16: inputs, weights and each intermediate rounded to 8 significant bits (2^-8 = 3.9e-3
      // each, about 5 roundings on a path): 5e-2. The router's top-k can flip on near-ties in bf16,
      // which the float64 reference would not share, so bf16 is compared with the bf16 loop only.
      const std::string what = describe(s) + (dt == torch::kFloat32 ? " float32" : " bfloat16");
      if (dt == torch::kFloat32) {
        expect_close(grouped, ref, 1e-4, what + " vs float64 CPU loop");
        expect_close(loop, ref, 1e-4, what + " (loop) vs float64 CPU loop");
      } else {
        expect_close(grouped, loop, 5e-2, what + " vs the bf16 loop on CUDA");
      }
    }
  }
}

#ifdef GRPO_HAVE_CUDA_KERNELS
// Runs f with CUDA's sync debug mode set to error: any synchronising CUDA call (a device-to-host
// copy, .item(), nonzero, cudaStreamSynchronize) throws c10::Error. Returns that error's text or "".
std::string sync_error(const std::function<void()>& f) {
  auto& ws = c10::cuda::warning_state();
  ws.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  std::string err;
  try {
    f();
  } catch (const c10::Error& e) {
    err = e.what();
  }
  ws.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  return err;
}
#endif

TEST(MoeDispatchCuda, GroupedForwardBackwardHasNoHostSync) {
  REQUIRE_CUDA();
#ifdef GRPO_HAVE_CUDA_KERNELS
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    const Shape s = kShapes[0];
    torch::manual_seed(2);
    Moe m(spec_from_config(moe_config(s)));
    m->to(torch::kCUDA, dt);
    auto x = torch::randn({s.batch, s.seq, s.hidden}, torch::TensorOptions(torch::kCUDA).dtype(dt));
    auto proj = torch::randn_like(x);
    auto step = [&] {
      m->zero_grad();
      auto xx = x.detach().requires_grad_();
      auto [y, st] = m->forward(xx, torch::Tensor());
      (y * proj).sum().backward();
    };
    m->impl = OpImpl::GRPO;
    step();  // warm-up: the load counter moves to the device, kernels load
    torch::cuda::synchronize();
    OpCounter c;
    const std::string err = sync_error(step);
    EXPECT_EQ(err, "") << "grouped MoE synchronised with the host";
    EXPECT_EQ(c["aten::_local_scalar_dense"], 0) << ".item()";
    EXPECT_EQ(c["aten::nonzero"], 0);
    EXPECT_EQ(c["grpo::moe_grouped_gemm"], 3) << "the grouped path ran";
    // The detector works: the loop reads the expert counts on the host.
    m->impl = OpImpl::PLAIN;
    step();
    torch::cuda::synchronize();
    EXPECT_NE(sync_error(step), "") << "the loop's .cpu() of the counts must trip the sync detector";
  }
#endif
}

TEST(MoeDispatchCuda, AppliedModelOnCudaRunsGroupedExperts) {
  REQUIRE_CUDA();
  torch::manual_seed(3);
  const Shape s = kShapes[0];
  Transformer t(spec_from_config(moe_config(s)));
  t->to(torch::kCUDA);
  config::KernelsConfig k;
  k.fused_ops = true;
  const std::string line = apply_kernels(*t, k, /*log_line=*/false);
  EXPECT_NE(line.find(" moe=grouped("), std::string::npos) << line;
  const int moe_layers = 2;  // every layer of moe_config is MoE (first_k_dense_replace 0)
  auto ids = torch::randint(0, 32, {2, 6}, torch::TensorOptions(torch::kCUDA).dtype(torch::kInt64));
  OpCounter c;
  auto out = t->forward(ids, torch::ones_like(ids));
  out.hidden.sum().backward();
  EXPECT_EQ(c["grpo::moe_grouped_gemm"], 3 * moe_layers);
  EXPECT_EQ(c["grpo::_moe_gemm_wgrad"], 3 * moe_layers);
  k.fused_ops = false;
  apply_kernels(*t, k, false);
  OpCounter off;
  t->forward(ids, torch::ones_like(ids));
  EXPECT_EQ(off.with_prefix("grpo::"), 0);
}

}  // namespace
}  // namespace grpo::model
