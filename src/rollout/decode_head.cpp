#include "grpo/rollout/decode_head.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdlib>
#include <cstring>
#include <optional>

namespace grpo::rollout {

namespace {

using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<c10::string_view>);

// The oneDNN ops, or nullopt when this LibTorch does not register them.
std::optional<c10::OperatorHandle> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

bool packing_enabled() {
  const char* env = std::getenv("GRPO_PACKED_LM_HEAD");
  return !(env && std::strcmp(env, "0") == 0);
}

}  // namespace

DecodeHead::DecodeHead(model::Transformer model, int64_t max_rows, bool allow_packing) : model_(std::move(model)) {
  const torch::Tensor& w = model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight;
  weight_impl_ = (model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight).unsafeGetTensorImpl();
  if (!allow_packing || !packing_enabled() || !w.device().is_cpu() || w.scalar_type() != torch::kFloat32 || !at::hasMKLDNN()) return;
  auto reorder = find_op("mkldnn::_reorder_linear_weight");
  auto linear = find_op("mkldnn::_linear_pointwise");
  if (!reorder || !linear) return;
  torch::NoGradGuard no_grad;
  try {
    // typed() checks the C++ signature against the registration; a LibTorch whose ops changed
    // falls back to the plain head instead of failing the rollout.
    linear->typed<LinearFn>();
    packed_ = reorder->typed<ReorderFn>().call(w.detach().contiguous(), std::max<int64_t>(max_rows, 1));
  } catch (const c10::Error&) {
    packed_ = torch::Tensor();
    return;
  }
  if (model_->lm_head && model_->lm_head->bias.defined()) bias_ = model_->lm_head->bias.detach();
  weight_impl_ = w.unsafeGetTensorImpl();
  if (!w.is_inference()) weight_version_ = static_cast<int64_t>(w._version());
}

bool DecodeHead::up_to_date() const {
  const torch::Tensor& w = model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight;
  if (w.unsafeGetTensorImpl() != weight_impl_) return false;
  if (!packed_.defined()) return true;  // the plain path reads the live weight
  return !w.is_inference() && weight_version_ == static_cast<int64_t>(w._version());
}

torch::Tensor DecodeHead::operator()(const torch::Tensor& hidden) const {
  if (!packed_.defined()) return model_->logits(hidden);
  static const auto linear = find_op("mkldnn::_linear_pointwise")->typed<LinearFn>();
  std::optional<at::Tensor> bias;
  if (bias_.defined()) bias = bias_;
  return linear.call(hidden.contiguous(), packed_, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

}  // namespace grpo::rollout
