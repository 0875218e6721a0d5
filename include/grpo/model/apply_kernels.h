#pragma once
// The kernels apply step (torchtitan style): after the model is built and moved to its device,
// point each module's implementation slot (op_impl.h) at the grpo:: dispatcher ops or leave the
// plain LibTorch compositions. The model's forward is the same code either way.
#include <string>

#include "grpo/config/precision_config.h"
#include "grpo/model/transformer.h"

namespace grpo::model {

/// kernels.fused_ops: every RMSNorm (residual add + RMSNorm after attention, the other norms
/// alone), every SwiGLU (dense MLPs, experts, shared experts) and RoPE run the grpo:: ops, and on
/// CUDA the MoE layers run their routed experts grouped (grpo::moe_permute, moe_gather,
/// moe_grouped_gemm, moe_unpermute: no host synchronisation); on CPU MoE keeps its per-expert loop.
/// false sets them all back to plain.
/// kernels.fp8: the linears of every attention (q, k, v, o) and every MLP (gate, up, down of dense
/// MLPs, routed and shared experts) run grpo::fp8_linear (fp8_linear.h); embeddings, lm_head,
/// router and norms stay as they are; MoE experts then run the loop (no grouped FP8 GEMM). Refused
/// (InputError naming kernels.fp8) unless the model is on a CUDA device of compute capability 9.0+
/// and this build has the CUDA kernels. Call again after rebuilding modules. Logs and returns one
/// line naming each op family's implementation, e.g. "kernels: rms_norm=grpo::add_rms_norm+rms_norm(cpu)
/// swiglu=grpo::swiglu(cpu) rope=grpo::rope(cpu) moe=loop fp8=off (...)" or, on an H100,
/// "... moe=loop(fp8 experts) fp8=on(7 linears/layer) (...)".
/// `log_line` false: return the line without logging it (a second model of the same run, e.g. the
/// GRPO reference, whose line would repeat the policy's).
std::string apply_kernels(TransformerImpl& model, const config::KernelsConfig& cfg, bool log_line = true);

}  // namespace grpo::model
