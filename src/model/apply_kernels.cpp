#include "grpo/model/apply_kernels.h"

#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::model {

std::string apply_kernels(TransformerImpl& model, const config::KernelsConfig& cfg) {
  // Never a silent fallback: an FP8 request that this step cannot honour is an error.
  GRPO_REQUIRE(!cfg.fp8, "kernels.fp8: the FP8 linear is not yet wired into the model (issue 14)");
  const OpImpl impl = cfg.fused_ops ? OpImpl::GRPO : OpImpl::PLAIN;
  int norms = 0, mlps = 0, attns = 0;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto* n = dynamic_cast<RMSNormImpl*>(m.get())) n->impl = impl, ++norms;
    else if (auto* f = dynamic_cast<MlpImpl*>(m.get())) f->impl = impl, ++mlps;
    else if (auto* a = dynamic_cast<AttentionImpl*>(m.get())) a->rope_impl = impl, ++attns;
  }
  GRPO_CHECK(norms > 0 && attns > 0, "apply_kernels: no RMSNorm or attention module found in the model");
  const std::string dev = model.device().is_cuda() ? "(cuda)" : "(cpu)";
  auto name = [&](const char* grpo_op, const char* plain) { return cfg.fused_ops ? std::string(grpo_op) + dev : plain; };
  std::string line = str("kernels: rms_norm=", name("grpo::add_rms_norm+rms_norm", "plain"),
                         " swiglu=", mlps ? name("grpo::swiglu", "plain") : "none", " rope=", name("grpo::rope", "plain"),
                         " moe=", model.spec().moe.num_experts > 0 ? "loop" : "none", " fp8=off (", norms, " norms, ",
                         mlps, " swiglu mlps, ", attns, " attention layers)");
  log::info(line);
  return line;
}

}  // namespace grpo::model
