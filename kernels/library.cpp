// The `grpo` operator namespace: every schema in one place. Public ops are implemented for the
// CompositeImplicitAutograd key (they wrap a torch::autograd::Function around the internal `_`
// ops); the internal ops have a CPU reference and, in CUDA builds, a CUDA kernel. See
// docs/kernels.md.
#include <torch/library.h>

#include "grpo/kernels/ops.h"

TORCH_LIBRARY(grpo, m) {
  // RMSNorm (rms_norm.cpp)
  m.def("rms_norm(Tensor x, Tensor weight, float eps) -> Tensor");
  m.def("add_rms_norm(Tensor x, Tensor residual, Tensor weight, float eps) -> (Tensor, Tensor)");
  m.def("_rms_norm_fwd(Tensor x, Tensor? residual, Tensor weight, float eps) -> (Tensor, Tensor, Tensor)");
  m.def("_rms_norm_bwd(Tensor grad_y, Tensor? grad_h, Tensor h, Tensor weight, Tensor rstd) -> (Tensor, Tensor)");
  // SwiGLU (swiglu.cpp)
  m.def("swiglu(Tensor gate, Tensor up) -> Tensor");
  m.def("_swiglu_fwd(Tensor gate, Tensor up) -> Tensor");
  m.def("_swiglu_bwd(Tensor grad, Tensor gate, Tensor up) -> (Tensor, Tensor)");
  // RoPE (rope.cpp)
  m.def("rope(Tensor q, Tensor k, Tensor cos, Tensor sin) -> (Tensor, Tensor)");
  m.def("rope_(Tensor(a!) q, Tensor(b!) k, Tensor cos, Tensor sin, bool inverse=False) -> ()");
  // Token logprobs (token_logprobs.cpp)
  m.def("token_logprobs(Tensor hidden, Tensor weight, Tensor targets, float temperature=1.0, int chunk_size=4096) -> (Tensor, Tensor)");
  m.def("_token_logprobs_fwd(Tensor hidden, Tensor weight, Tensor targets, float temperature, int chunk_size) -> (Tensor, Tensor, Tensor)");
  m.def("_token_logprobs_bwd(Tensor grad_logp, Tensor grad_entropy, Tensor hidden, Tensor weight, Tensor targets, Tensor lse, Tensor entropy, float temperature, int chunk_size) -> (Tensor, Tensor)");
  // MoE (moe.cpp)
  m.def("moe_permute(Tensor expert_ids, int num_experts) -> (Tensor, Tensor, Tensor)");
  m.def("moe_gather(Tensor x, Tensor sorted_slots, Tensor slot_rows, int topk) -> Tensor");
  m.def("moe_grouped_gemm(Tensor x, Tensor weight, Tensor offsets) -> Tensor");
  m.def("moe_unpermute(Tensor y, Tensor sorted_slots, Tensor slot_rows, Tensor router_weights) -> Tensor");
  m.def("_moe_gather(Tensor x, Tensor sorted_slots, int topk, Tensor? weights) -> Tensor");
  m.def("_moe_unpermute(Tensor y, Tensor slot_rows, int topk, Tensor? weights) -> Tensor");
  m.def("_moe_router_grad(Tensor y, Tensor slot_rows, Tensor grad_out, int topk) -> Tensor");
  m.def("_moe_gemm(Tensor x, Tensor weight, Tensor offsets, bool trans_w) -> Tensor");
  m.def("_moe_gemm_wgrad(Tensor grad_y, Tensor x, Tensor offsets, int num_experts) -> Tensor");
  // FP8 (fp8.cpp)
  m.def("fp8_quantize(Tensor x, int block_rows) -> (Tensor, Tensor)");
  m.def("fp8_gemm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, ScalarType out_dtype) -> Tensor");
  m.def("fp8_linear(Tensor x, Tensor w) -> Tensor");
}

namespace grpo::kernels {
bool have_cuda_kernels() {
#ifdef GRPO_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}
}  // namespace grpo::kernels
