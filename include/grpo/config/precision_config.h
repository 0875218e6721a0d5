#pragma once
// kernels: which operator implementations the model uses (kernels/, docs/kernels.md).
#include <cstdint>

#include "grpo/config/reflect.h"

namespace grpo::config {

struct KernelsConfig {
  bool fused_ops = false;               // grpo:: ops instead of plain compositions (model/apply_kernels.cpp)
  int64_t logprob_chunk_size = 4096;    // vocabulary rows per chunk of the token-logprob op
  bool fp8 = false;                     // FP8 GEMMs in the linear layers; refused by validate() until wired

  template <class V> void visit(V& v) {
    v("fused_ops", fused_ops,
      "Use grpo's custom operators for RMSNorm (fused with the residual add after attention), SwiGLU and RoPE: CUDA kernels on GPU tensors, the LibTorch reference on CPU. The run log names what each op family uses (docs/kernels.md). Training logprobs use grpo::token_logprobs either way.");
    v("logprob_chunk_size", logprob_chunk_size,
      "Vocabulary rows per chunk when computing token logprobs from hidden states; peak extra memory is tokens x chunk logits.",
      at_least(1));
    v("fp8", fp8,
      "FP8 (e4m3) forward and backward GEMMs in the linear layers, DeepSeek-V3 recipe: 1x128 activation tiles, 128x128 weight blocks, float32 accumulation. CUDA sm_90 only. Not yet wired into the model (issue 14): true is a config error, never a silent bf16 run.");
  }
};

}  // namespace grpo::config
