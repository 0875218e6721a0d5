#pragma once
// kernels: which operator implementations the model uses (kernels/, docs/kernels.md).
#include <cstdint>

#include "grpo/config/reflect.h"

namespace grpo::config {

struct KernelsConfig {
  bool fused_ops = false;               // grpo:: ops instead of plain compositions (model/apply_kernels.cpp)
  int64_t logprob_chunk_size = 4096;    // vocabulary rows per chunk of the token-logprob op
  bool fp8 = false;                     // FP8 GEMMs in the decoder linears (model/apply_kernels.cpp); CUDA sm_90 only

  template <class V> void visit(V& v) {
    v("fused_ops", fused_ops,
      "Use grpo's custom operators for RMSNorm (fused with the residual add after attention), SwiGLU and RoPE: CUDA kernels on GPU tensors, the LibTorch reference on CPU. The run log names what each op family uses (docs/kernels.md). Training logprobs use grpo::token_logprobs either way.");
    v("logprob_chunk_size", logprob_chunk_size,
      "Vocabulary rows per chunk when computing token logprobs from hidden states; peak extra memory is tokens x chunk logits.",
      at_least(1));
    v("fp8", fp8,
      "FP8 (e4m3) forward, input-gradient and weight-gradient GEMMs in the decoder layers' linears (q, k, v, o, gate, up, down, MoE experts; not embeddings, lm_head, router or norms), DeepSeek-V3 recipe: 1x128 activation tiles, 128x128 weight blocks, float32 scales and accumulation; master weights unchanged. MoE experts then run one FP8 linear per expert (no grouped FP8 GEMM). CUDA sm_90 (Hopper) only: on model.device cpu, in a build without CUDA kernels, or on an older GPU it is an error naming this key, never a silent bf16 run. The run log's kernels line says fp8=on(N linears/layer).");
  }
};

}  // namespace grpo::config
