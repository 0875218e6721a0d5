#include "grpo/model/apply_kernels.h"

#include "grpo/kernels/ops.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::model {

namespace {

// The grouped MoE ops on CPU tensors run their LibTorch references, which loop over the experts
// themselves; on CPU the plain per-expert loop stays (docs/kernels.md has the measurement).
constexpr bool kGroupedMoeOnCpu = false;

// Why kernels.fp8 cannot run for this model, or "" when it can: never a silent bf16 run. The
// device is known only here (config validation refuses model.device=cpu and builds without CUDA
// kernels before a model exists).
std::string fp8_refusal(const TransformerImpl& model) {
  const torch::Device dev = model.device();
  if (!dev.is_cuda())
    return str("kernels.fp8: FP8 linears need a CUDA sm_90 GPU, but the model is on ", dev.str(),
               "; set kernels.fp8: false");
  if (!kernels::have_cuda_kernels())
    return "kernels.fp8: this build has no CUDA kernels (configured without nvcc or with GRPO_CUDA=OFF); "
           "set kernels.fp8: false";
  const int cc = kernels::cuda_compute_capability(dev.index());
  if (cc < 90)
    return str("kernels.fp8: FP8 linears need a CUDA sm_90 (Hopper) GPU, but ", dev.str(), " is sm_", cc,
               "; set kernels.fp8: false");
  return "";
}

}  // namespace

std::string apply_kernels(TransformerImpl& model, const config::KernelsConfig& cfg, bool log_line) {
  if (cfg.fp8) {
    const std::string why = fp8_refusal(model);
    GRPO_REQUIRE(why.empty(), why);
  }
  const OpImpl impl = cfg.fused_ops ? OpImpl::GRPO : OpImpl::PLAIN;
  const LinearImpl lin = cfg.fp8 ? LinearImpl::FP8 : LinearImpl::PLAIN;
  const bool cuda = model.device().is_cuda();
  // Grouped experts: with the grpo:: ops on, on CUDA (CPU: kGroupedMoeOnCpu), and not with FP8
  // (the grouped GEMM has no FP8 variant: FP8 experts run one fp8_linear each in the loop).
  const OpImpl moe_impl = cfg.fused_ops && !cfg.fp8 && (cuda || kGroupedMoeOnCpu) ? OpImpl::GRPO : OpImpl::PLAIN;
  int norms = 0, mlps = 0, attns = 0, moes = 0, fp8_linears = 0;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto* n = dynamic_cast<RMSNormImpl*>(m.get())) {
      n->impl = impl, ++norms;
    } else if (auto* f = dynamic_cast<MlpImpl*>(m.get())) {
      f->impl = impl, f->linear_impl = lin, ++mlps, fp8_linears += cfg.fp8 ? 3 : 0;
    } else if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) {
      a->rope_impl = impl, a->linear_impl = lin, ++attns, fp8_linears += cfg.fp8 ? 4 : 0;
    } else if (auto* e = dynamic_cast<MoeImpl*>(m.get())) {
      e->impl = moe_impl, ++moes;
    }
  }
  GRPO_CHECK(norms > 0 && attns > 0, "apply_kernels: no RMSNorm or attention module found in the model");
  const std::string dev = cuda ? "(cuda)" : "(cpu)";
  auto name = [&](const char* grpo_op, const char* plain) { return cfg.fused_ops ? std::string(grpo_op) + dev : plain; };
  const std::string moe = moes == 0                     ? "none"
                          : moe_impl == OpImpl::GRPO    ? "grouped(grpo::moe_permute+moe_grouped_gemm+moe_unpermute" + dev + ")"
                          : cfg.fp8                     ? "loop(fp8 experts)"
                                                        : "loop";
  // Linears per decoder layer (attention 4, each MLP/expert/shared expert 3): the same in every
  // layer of a dense model; MoE models mixing dense and MoE layers get the total instead.
  const std::string fp8 = !cfg.fp8                          ? "off"
                          : fp8_linears % attns == 0         ? str("on(", fp8_linears / attns, " linears/layer)")
                                                             : str("on(", fp8_linears, " linears in ", attns, " layers)");
  std::string line = str("kernels: rms_norm=", name("grpo::add_rms_norm+rms_norm", "plain"),
                         " swiglu=", mlps ? name("grpo::swiglu", "plain") : "none", " rope=", name("grpo::rope", "plain"),
                         " moe=", moe, " fp8=", fp8, " (", norms, " norms, ", mlps, " swiglu mlps, ", attns,
                         " attention layers)");
  if (log_line) log::info(line);
  return line;
}

}  // namespace grpo::model
