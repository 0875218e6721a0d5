#include "grpo/model/packed_linear.h"

#include "grpo/model/lora.h"

#include "grpo/util/error.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdlib>
#include <cstring>
#include <optional>

namespace grpo::model {

namespace {

using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<c10::string_view>);

struct Ops {
  std::optional<c10::TypedOperatorHandle<ReorderFn>> reorder;
  std::optional<c10::TypedOperatorHandle<LinearFn>> linear;
};

const Ops& ops() {
  static const Ops o = [] {
    Ops r;
    if (!at::hasMKLDNN()) return r;
    auto& d = c10::Dispatcher::singleton();
    auto re = d.findSchema({"mkldnn::_reorder_linear_weight", ""});
    auto li = d.findSchema({"mkldnn::_linear_pointwise", ""});
    if (!re || !li) return r;
    try {
      // typed() checks the C++ signature against the registration: a LibTorch whose ops changed
      // leaves the plain path in use.
      r.reorder = re->typed<ReorderFn>();
      r.linear = li->typed<LinearFn>();
    } catch (const c10::Error&) {
      r = Ops{};
    }
    return r;
  }();
  return o;
}

thread_local PackedWeights* t_current = nullptr;

}  // namespace

PackedWeights::PackedWeights(torch::Dtype dtype) : dtype_(dtype) {
  GRPO_REQUIRE(dtype == torch::kFloat32 || dtype == torch::kBFloat16, "PackedWeights: compute dtype ",
               c10::toString(dtype), " is neither float32 nor bfloat16");
}

bool PackedWeights::ops_registered() { return ops().linear.has_value(); }

bool PackedWeights::available() {
  static const bool enabled = [] {
    const char* env = std::getenv("GRPO_PACKED_WEIGHTS");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return enabled && ops_registered();
}

torch::Tensor PackedWeights::pack(const torch::Tensor& w, std::optional<int64_t> rows) {
  TORCH_CHECK(ops_registered(), "PackedWeights::pack: this LibTorch has no oneDNN linear ops");
  torch::NoGradGuard no_grad;
  return ops().reorder->call(w.detach().contiguous(), rows);
}

torch::Tensor PackedWeights::apply(const torch::Tensor& x, const torch::Tensor& packed, const torch::Tensor& b) {
  TORCH_CHECK(ops_registered(), "PackedWeights::apply: this LibTorch has no oneDNN linear ops");
  std::optional<at::Tensor> bias;
  if (b.defined()) bias = b;
  return ops().linear->call(x, packed, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

bool PackedWeights::packable(const torch::Tensor& w) {
  return w.defined() && w.dim() == 2 && w.device().is_cpu() && w.scalar_type() == torch::kFloat32 && !w.is_inference();
}

torch::Tensor PackedWeights::linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(ops_registered() && packable(w), "PackedWeights::linear: the packed path does not apply");
  c10::TensorImpl* impl = w.unsafeGetTensorImpl();
  const int64_t version = static_cast<int64_t>(w._version());
  auto it = entries_.find(impl);
  if (it == entries_.end() || it->second.version != version) {
    // The bf16 copy is packed from the rounded float32 weight: round to nearest even, as autocast's cast.
    Entry e{c10::weak_intrusive_ptr<c10::TensorImpl>(w.getIntrusivePtr()), version, pack(w.to(dtype_), std::nullopt)};
    entries_.erase(impl);
    it = entries_.emplace(impl, std::move(e)).first;
  }
  auto y = apply(x.reshape({-1, x.size(-1)}).to(dtype_).contiguous(), it->second.packed, b.defined() ? b.to(dtype_) : b);
  auto out_shape = x.sizes().vec();
  out_shape.back() = w.size(0);
  return y.view(out_shape);
}

std::optional<torch::Dtype> PackedWeights::packed_dtype(const torch::Tensor& w) const {
  auto it = entries_.find(w.unsafeGetTensorImpl());
  if (it == entries_.end()) return std::nullopt;
  return it->second.packed.scalar_type();
}

PackedWeightsScope::PackedWeightsScope(PackedWeights* packed) : previous_(t_current) { t_current = packed; }
PackedWeightsScope::~PackedWeightsScope() { t_current = previous_; }

// y plus the LoRA adapter's term when apply_lora attached an enabled one (lora.h); the base
// product y may come from the packed weight: the adapter stays unmerged.
static torch::Tensor with_lora(torch::nn::Linear& l, const torch::Tensor& x, torch::Tensor y) {
  LoraAdapterImpl* a = lora_adapter(*l);
  return a && a->enabled ? y + a->delta(x) : y;
}

torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x) {
  PackedWeights* p = t_current;
  if (p && !torch::GradMode::is_enabled() && x.device().is_cpu() &&
      (x.scalar_type() == torch::kFloat32 || x.scalar_type() == p->dtype()) &&
      PackedWeights::packable(l->weight) && PackedWeights::available())
    return with_lora(l, x, p->linear(x, l->weight, l->bias));
  return with_lora(l, x, l->forward(x));
}

}  // namespace grpo::model
