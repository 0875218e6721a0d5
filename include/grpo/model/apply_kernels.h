#pragma once
// The kernels apply step (torchtitan style): after the model is built and moved to its device,
// point each module's implementation slot (op_impl.h) at the grpo:: dispatcher ops or leave the
// plain LibTorch compositions. The model's forward is the same code either way.
#include <string>

#include "grpo/config/precision_config.h"
#include "grpo/model/transformer.h"

namespace grpo::model {

/// kernels.fused_ops: every RMSNorm (residual add + RMSNorm after attention, the other norms
/// alone), every SwiGLU (dense MLPs, experts, shared experts) and RoPE run the grpo:: ops; false
/// sets them all back to plain. MoE keeps its per-expert loop; kernels.fp8 is refused (InputError:
/// not wired in yet, issue 14; config validation refuses it first). Call again after rebuilding
/// modules. Logs and returns one line naming each op family's implementation, e.g.
/// "kernels: rms_norm=grpo::add_rms_norm+rms_norm(cpu) swiglu=grpo::swiglu(cpu) rope=grpo::rope(cpu) moe=loop fp8=off".
std::string apply_kernels(TransformerImpl& model, const config::KernelsConfig& cfg);

}  // namespace grpo::model
