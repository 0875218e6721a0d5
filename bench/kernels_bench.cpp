// Benchmarks of the custom CUDA kernels (kernels/) against the card's measured ceilings
// (device-to-device copy bandwidth; cuBLAS bf16 GEMM rate through torch::matmul) and against the
// plain LibTorch composition of the same op on the same shapes. Prints one table; the ratios
// are what to read: "vs torch" > 1 means ours is faster, "of ceiling" is the fraction of the
// copy bandwidth (memory-bound ops) or of the cuBLAS bf16 rate (GEMM-like ops) reached.
// The L2 cache is flushed (a 512 MB write) before every timed run; each time is the median of
// `reps` runs after one warm-up. Exits 0 with a message on machines without a CUDA device.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "grpo/kernels/ops.h"

namespace {
using torch::Tensor;
namespace gk = grpo::kernels;

Tensor g_flush;

double time_ms(const std::function<void()>& fn, int reps = 10) {
  fn();  // warm-up (and lazy initialisation)
  torch::cuda::synchronize();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    g_flush.zero_();  // evict the operands from L2 (60 MB on H200)
    torch::cuda::synchronize();
    auto t0 = std::chrono::steady_clock::now();
    fn();
    torch::cuda::synchronize();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string name, shape;
  double ours_ms, torch_ms;
  double work;  // bytes (memory-bound) or FLOP (GEMM-like) of our op
  bool flops;
};

double g_copy_gbs = 0, g_gemm_tflops = 0;

void print(const std::vector<Row>& rows) {
  std::printf("\n%-26s %-34s %10s %10s %9s %12s %11s\n", "kernel", "shape", "ours ms", "torch ms",
              "vs torch", "ours rate", "of ceiling");
  for (const auto& r : rows) {
    const double rate = r.work / (r.ours_ms * 1e-3) / (r.flops ? 1e12 : 1e9);
    const double ceil = r.flops ? g_gemm_tflops : g_copy_gbs;
    std::printf("%-26s %-34s %10.3f %10.3f %8.2fx %8.1f %-3s %10.1f%%\n", r.name.c_str(),
                r.shape.c_str(), r.ours_ms, r.torch_ms, r.torch_ms / r.ours_ms, rate,
                r.flops ? "TF" : "GB", 100.0 * rate / ceil);
  }
}

Tensor rotate_half(const Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

int main() {
  if (!torch::cuda::is_available() || !gk::have_cuda_kernels()) {
    std::printf("bench_kernels_bench: no CUDA device (or no CUDA kernels in this build); skipped\n");
    return 0;
  }
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
  g_flush = torch::empty({128 << 20}, f32);

  // Ceilings, measured on this card now.
  {
    Tensor a = torch::empty({int64_t{1} << 30}, bf), b = torch::empty_like(a);  // 2 GiB each
    const double ms = time_ms([&] { b.copy_(a); });
    g_copy_gbs = 2.0 * a.numel() * 2 / (ms * 1e-3) / 1e9;
    Tensor x = torch::randn({8192, 8192}, bf), y = torch::randn({8192, 8192}, bf);
    const double gms = time_ms([&] { torch::matmul(x, y); });
    g_gemm_tflops = 2.0 * 8192.0 * 8192 * 8192 / (gms * 1e-3) / 1e12;
    std::printf("ceilings: device-to-device copy %.0f GB/s (read + write), cuBLAS bf16 GEMM 8192^3 %.0f TFLOP/s\n",
                g_copy_gbs, g_gemm_tflops);
  }
  std::vector<Row> rows;

  {  // add + RMSNorm, bf16
    const int64_t n = 16384, d = 4096;
    Tensor x = torch::randn({n, d}, bf), r = torch::randn({n, d}, bf), w = torch::randn({d}, bf);
    const double ours = time_ms([&] { gk::add_rms_norm(x, r, w, 1e-6); });
    const double ref = time_ms([&] {
      Tensor h = x + r;
      Tensor hf = h.to(torch::kFloat);
      Tensor y = (hf * torch::rsqrt(hf.square().mean(-1, true) + 1e-6)).to(torch::kBFloat16) * w;
    });
    rows.push_back({"add_rms_norm fwd", "[16384, 4096] bf16", ours, ref, 4.0 * n * d * 2, false});
    Tensor xg = x.clone().requires_grad_(), rg = r.clone().requires_grad_(), wg = w.clone().requires_grad_();
    torch::AutoGradMode grad(true);
    auto [y, h] = gk::add_rms_norm(xg, rg, wg, 1e-6);
    Tensor gy = torch::randn_like(y);
    const double ours_b = time_ms([&] { torch::autograd::grad({y}, {xg, wg}, {gy}, true); });
    Tensor hr = (xg + rg);
    Tensor hf = hr.to(torch::kFloat);
    Tensor yr = (hf * torch::rsqrt(hf.square().mean(-1, true) + 1e-6)).to(torch::kBFloat16) * wg;
    const double ref_b = time_ms([&] { torch::autograd::grad({yr}, {xg, wg}, {gy}, true); });
    rows.push_back({"add_rms_norm bwd", "[16384, 4096] bf16", ours_b, ref_b, 4.0 * n * d * 2, false});
  }
  {  // SwiGLU, bf16
    const int64_t n = 8192, d = 14336;
    Tensor g = torch::randn({n, d}, bf), u = torch::randn({n, d}, bf);
    const double ours = time_ms([&] { gk::swiglu(g, u); });
    const double ref = time_ms([&] { torch::silu(g) * u; });
    rows.push_back({"swiglu fwd", "[8192, 14336] bf16", ours, ref, 3.0 * n * d * 2, false});
  }
  {  // RoPE in place on q and k, bf16
    const int64_t t = 16384, hq = 32, hk = 8, hd = 128;
    Tensor q = torch::randn({t, hq, hd}, bf), k = torch::randn({t, hk, hd}, bf);
    Tensor ang = torch::rand({t, hd / 2}, f32) * 100;
    Tensor c = ang.cos(), s = ang.sin();
    const double ours = time_ms([&] { gk::rope_(q, k, c, s); });
    Tensor cf = torch::cat({c, c}, -1).unsqueeze(1).to(torch::kBFloat16),
           sf = torch::cat({s, s}, -1).unsqueeze(1).to(torch::kBFloat16);
    const double ref = time_ms([&] {
      q.copy_(q * cf + rotate_half(q) * sf);
      k.copy_(k * cf + rotate_half(k) * sf);
    });
    const double bytes = 2.0 * (q.numel() + k.numel()) * 2 + 2.0 * c.numel() * 4;
    rows.push_back({"rope_ (q and k)", "q[16384,32,128] k[16384,8,128]", ours, ref, bytes, false});
  }
  {  // token logprobs + entropy, bf16, Llama-3 vocabulary
    const int64_t n = 8192, d = 2048, v = 128256;
    Tensor h = torch::randn({n, d}, bf), w = torch::randn({v, d}, bf) * 0.02;
    Tensor tgt = torch::randint(0, v, {n}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kLong));
    const double ours = time_ms([&] { gk::token_logprobs(h, w, tgt, 1.0, 8192); }, 5);
    const double ref = time_ms([&] {
      Tensor lsm = torch::log_softmax(torch::matmul(h, w.t()).to(torch::kFloat), -1);
      Tensor lp = lsm.gather(1, tgt.unsqueeze(1));
      Tensor ent = -(lsm.exp() * lsm).sum(-1);
    }, 5);
    rows.push_back({"token_logprobs fwd", "h[8192,2048] W[128256,2048] bf16", ours, ref,
                    2.0 * n * d * v, true});
    torch::AutoGradMode grad(true);
    Tensor hg = h.clone().requires_grad_(), wg = w.clone().requires_grad_();
    auto [lp, ent] = gk::token_logprobs(hg, wg, tgt, 1.0, 8192);
    Tensor loss = lp.sum() + ent.sum();
    const double ours_b = time_ms([&] { torch::autograd::grad({loss}, {hg, wg}, {}, true); }, 5);
    Tensor lsm = torch::log_softmax(torch::matmul(hg, wg.t()).to(torch::kFloat), -1);
    Tensor loss_r = lsm.gather(1, tgt.unsqueeze(1)).sum() - (lsm.exp() * lsm).sum();
    const double ref_b = time_ms([&] { torch::autograd::grad({loss_r}, {hg, wg}, {}, true); }, 5);
    rows.push_back({"token_logprobs bwd", "h[8192,2048] W[128256,2048] bf16", ours_b, ref_b,
                    4.0 * n * d * v + 2.0 * n * d * v, true});
  }
  {  // MoE layer (one projection), bf16: permute + gather + grouped GEMM + unpermute
    const int64_t t = 8192, topk = 8, e = 64, d = 2048, nout = 1408;
    Tensor x = torch::randn({t, d}, bf), w = torch::randn({e, nout, d}, bf) * 0.02;
    Tensor ids = std::get<1>(torch::rand({t, e}, f32).topk(topk, -1));
    Tensor rw = torch::softmax(torch::randn({t, topk}, f32), -1);
    const double ours = time_ms([&] {
      auto r = gk::moe_permute(ids, e);
      gk::moe_unpermute(gk::moe_grouped_gemm(gk::moe_gather(x, r, topk), w, r), r, rw);
    });
    const double ref = time_ms([&] {  // the usual eager loop; needs the counts on the host
      Tensor flat = ids.reshape({-1});
      Tensor order = std::get<1>(torch::sort(flat, true, 0, false));
      Tensor counts = torch::bincount(flat, {}, e).cpu();
      Tensor xs = x.index_select(0, torch::floor_divide(order, topk));
      Tensor ys = torch::empty({xs.size(0), nout}, bf);
      int64_t off = 0;
      auto ca = counts.accessor<int64_t, 1>();
      for (int64_t i = 0; i < e; ++i) {
        if (ca[i] > 0) ys.narrow(0, off, ca[i]).copy_(torch::matmul(xs.narrow(0, off, ca[i]), w[i].t()));
        off += ca[i];
      }
      Tensor out = torch::zeros({t, nout}, f32);
      out.index_add_(0, torch::floor_divide(order, topk),
                     ys.to(torch::kFloat) * rw.reshape({-1}).index_select(0, order).unsqueeze(1));
    });
    rows.push_back({"moe dispatch+gemm+combine", "T8192 k8 E64 2048->1408 bf16", ours, ref,
                    2.0 * t * topk * d * nout, true});
  }
  {  // FP8 GEMM vs cuBLAS bf16 GEMM of the same shape
    const int64_t m = 8192, n = 8192, k = 8192;
    Tensor a = torch::randn({m, k}, bf), b = torch::randn({n, k}, bf);
    auto [qa, sa] = gk::fp8_quantize_act(a);
    auto [qb, sb] = gk::fp8_quantize_weight(b);
    const double ours = time_ms([&] { gk::fp8_gemm(qa, sa, qb, sb, torch::kBFloat16); }, 5);
    const double ref = time_ms([&] { torch::matmul(a, b.t()); }, 5);
    rows.push_back({"fp8_gemm wmma (vs bf16)", "8192^3 e4m3 -> bf16", ours, ref, 2.0 * m * n * k, true});
    setenv("GRPO_FP8_GEMM", "simt", 1);
    const double simt = time_ms([&] { gk::fp8_gemm(qa, sa, qb, sb, torch::kBFloat16); }, 3);
    unsetenv("GRPO_FP8_GEMM");
    rows.push_back({"fp8_gemm simt (vs bf16)", "8192^3 e4m3 -> bf16", simt, ref, 2.0 * m * n * k, true});
    const double q = time_ms([&] { gk::fp8_quantize_act(a); });
    const double qref = time_ms([&] {
      Tensor t2 = a.view({m, k / 128, 128}).to(torch::kFloat);
      Tensor s = t2.abs().amax(-1, true).clamp_min(1e-4) / 448;
      (t2 / s).to(torch::kFloat8_e4m3fn);
    });
    rows.push_back({"fp8_quantize_act 1x128", "[8192, 8192] bf16", q, qref, 3.0 * m * k, false});
  }
  print(rows);
  return 0;
}
