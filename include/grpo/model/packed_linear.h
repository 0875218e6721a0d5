#pragma once
// oneDNN-packed copies of linear weights, for inference on the CPU.
//
// Why: at the few rows of a decode step, MKL's sgemm re-packs the whole weight matrix on every
// call (27% of a SmolLM2 decode step in perf, 53% for a large-vocabulary head). oneDNN's linear
// over a weight packed once (mkldnn::_reorder_linear_weight / mkldnn::_linear_pointwise, the ops
// PyTorch's inductor uses on CPU) skips that. The rollout engine opens a PackedWeightsScope around
// generate(); the model's modules call model::linear(), which uses the packed copy while a scope
// is open. Costs one more copy of every linear weight (float32) while the PackedWeights lives.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <unordered_map>

namespace grpo::model {

class PackedWeights {
 public:
  /// True when LibTorch has oneDNN (at::hasMKLDNN()) with those ops registered and the
  /// environment does not set GRPO_PACKED_WEIGHTS=0.
  static bool available();

  /// x: [..., in] float32 on the CPU; w: [out, in] float32 CPU (not an inference tensor); b: [out]
  /// or undefined. Returns x @ w^T + b, [..., out] float32, equal to torch::nn::functional::linear
  /// up to float32 summation order. Packs w on first use and again when its version counter has
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
  void clear() { entries_.clear(); }

 private:
  struct Entry {
    c10::weak_intrusive_ptr<c10::TensorImpl> weight;  // keeps the address from being reused
    int64_t version;
    torch::Tensor packed;
  };
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
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

/// l(x), through the open PackedWeightsScope when there is one, grad mode is off and x and the
/// weight are float32 on the CPU; otherwise l->forward(x). Shapes as torch::nn::Linear.
torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x);

}  // namespace grpo::model
