#pragma once
// Helpers shared by the operator files of kernels/: argument checks, typed dispatcher handles,
// and (in CUDA builds) the bridge to the launch_* functions of launch.h.
#include <torch/torch.h>

#include <string>

#ifdef GRPO_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "launch.h"
#endif

namespace grpo::kernels::detail {

/// float32 / bfloat16 (/ float64 where the CPU reference allows it, for finite differences).
inline void check_float(const torch::Tensor& t, const char* op, const char* name,
                        bool allow_double = true) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == torch::kFloat || s == torch::kBFloat16 || (allow_double && s == torch::kDouble),
              "grpo::", op, ": ", name, " must be float32 or bfloat16, got ", s);
}

inline void check_same(const torch::Tensor& a, const torch::Tensor& b, const char* op,
                       const char* na, const char* nb) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "grpo::", op, ": ", nb, " must have the dtype of ",
              na, " (", a.scalar_type(), "), got ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), "grpo::", op, ": ", nb, " must be on ", na, "'s device (",
              a.device(), "), got ", b.device());
}

/// Accumulation dtype of the CPU references: float32, or float64 for float64 inputs.
inline torch::ScalarType acc_type(torch::ScalarType s) {
  return s == torch::kDouble ? torch::kDouble : torch::kFloat;
}

/// Typed handle of a registered grpo:: operator, looked up once.
template <class Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

#ifdef GRPO_HAVE_CUDA_KERNELS
inline cuda::DType cuda_dtype(const torch::Tensor& t, const char* op) {
  if (t.scalar_type() == torch::kFloat) return cuda::DType::F32;
  TORCH_CHECK(t.scalar_type() == torch::kBFloat16, "grpo::", op,
              ": the CUDA kernel takes float32 or bfloat16, got ", t.scalar_type());
  return cuda::DType::BF16;
}
inline cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
#endif

}  // namespace grpo::kernels::detail
