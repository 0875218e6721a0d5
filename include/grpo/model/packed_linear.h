#pragma once
// oneDNN-packed copies of linear weights, for inference on the CPU.
//
// Why: at the few rows of a decode step, MKL's sgemm re-packs the whole weight matrix on every
// call (27% of a SmolLM2 decode step in perf, 53% for a large-vocabulary head). oneDNN's linear
// over a weight packed once (mkldnn::_reorder_linear_weight / mkldnn::_linear_pointwise, the ops
// PyTorch's inductor uses on CPU) skips that. The rollout engine opens a PackedWeightsScope around
// generate(); the model's modules call model::linear(), which uses the packed copy while a scope
// is open. Costs one more copy of every linear weight (float32) while the PackedWeights lives.
//
// bfloat16 (trainer.bf16 on the CPU): a PackedWeights made for kBFloat16 packs bf16 copies of the
// float32 weights (half the memory) and computes x.bf16 @ w.bf16^T + b.bf16 with float32
// accumulation, rounded to a bf16 result: the arithmetic of torch's CPU bf16 autocast of a linear
// (which casts input, weight and bias to bf16 and returns bf16), up to the summation order, on
// AVX512-BF16/AMX instructions where the CPU has them.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <unordered_map>

namespace grpo::model {

class PackedWeights {
 public:
  /// `dtype`: the compute dtype, kFloat32 (the default) or kBFloat16; anything else throws
  /// grpo::InputError.
  explicit PackedWeights(torch::Dtype dtype = torch::kFloat32);

  /// The compute dtype the weights are packed in and linear() returns.
  torch::Dtype dtype() const { return dtype_; }

  /// True when LibTorch has oneDNN (at::hasMKLDNN()) with those ops registered and the
  /// environment does not set GRPO_PACKED_WEIGHTS=0.
  static bool available();

  /// x: [..., in] float32 (or, for a bf16 PackedWeights, bf16) on the CPU; w: [out, in] float32
  /// CPU (not an inference tensor); b: [out] or undefined. Returns x @ w^T + b, [..., out] in
  /// dtype(): for float32 equal to torch::nn::functional::linear up to float32 summation order,
  /// for bf16 equal to it on bf16-rounded x, w, b up to float32 summation order, then rounded to
  /// bf16 (as CPU autocast computes it). Packs w on first use and again when its version counter has
  /// moved (an optimizer step, a weight load). Throws c10::Error from LibTorch on shape mismatch.
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

  /// Whether `w` may take the packed path (float32, CPU, not an inference tensor).
  static bool packable(const torch::Tensor& w);

  /// The two oneDNN ops underneath, for a caller that keeps its own packed copy (the rollout's
  /// head). ops_registered(): this LibTorch has them (whatever GRPO_PACKED_WEIGHTS says).
  /// pack(): w [out, in] float32 CPU, packed for products of about `rows` rows (nullopt: no hint).
  /// apply(): x [rows, in] contiguous float32 -> [rows, out] with the packed weight and optional
  /// bias [out]. Both throw c10::Error when the ops are missing or the shapes disagree.
  static bool ops_registered();
  static torch::Tensor pack(const torch::Tensor& w, std::optional<int64_t> rows);
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& packed, const torch::Tensor& b);

  /// Number of weights packed now (for tests and logs).
  size_t size() const { return entries_.size(); }
  /// The dtype of the packed copy held for `w` (as oneDNN's packed tensor reports it), nullopt
  /// when w has none (for tests: which path ran).
  std::optional<torch::Dtype> packed_dtype(const torch::Tensor& w) const;
  void clear() { entries_.clear(); }

 private:
  struct Entry {
    c10::weak_intrusive_ptr<c10::TensorImpl> weight;  // keeps the address from being reused
    int64_t version;
    torch::Tensor packed;
  };
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
  torch::Dtype dtype_ = torch::kFloat32;
};

/// While alive, model::linear() on this thread uses `packed` (nullptr: nothing changes).
class PackedWeightsScope {
 public:
  explicit PackedWeightsScope(PackedWeights* packed);
  ~PackedWeightsScope();
  PackedWeightsScope(const PackedWeightsScope&) = delete;
  PackedWeightsScope& operator=(const PackedWeightsScope&) = delete;

 private:
  PackedWeights* previous_;
};

/// l(x), through the open PackedWeightsScope when there is one, grad mode is off, the weight is
/// float32 on the CPU and x is float32 or the scope's dtype on the CPU; otherwise l->forward(x).
/// Shapes as torch::nn::Linear; the result is in the scope's dtype on the packed path.
torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x);

}  // namespace grpo::model
