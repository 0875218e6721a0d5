#include "grpo/rollout/decode_head.h"

#include <cstdlib>
#include <cstring>

#include "grpo/model/packed_linear.h"

namespace grpo::rollout {

namespace {

bool packing_enabled() {
  const char* env = std::getenv("GRPO_PACKED_LM_HEAD");
  return !(env && std::strcmp(env, "0") == 0);
}

}  // namespace

DecodeHead::DecodeHead(model::Transformer model, int64_t max_rows, bool allow_packing) : model_(std::move(model)) {
  const torch::Tensor& w = model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight;
  weight_impl_ = w.unsafeGetTensorImpl();
  if (!allow_packing || !packing_enabled() || !w.device().is_cpu() || w.scalar_type() != torch::kFloat32 ||
      !model::PackedWeights::ops_registered())
    return;
  try {
    packed_ = model::PackedWeights::pack(w, std::max<int64_t>(max_rows, 1));
  } catch (const c10::Error&) {
    // The plain head instead of failing the rollout.
    packed_ = torch::Tensor();
    return;
  }
  if (model_->lm_head && model_->lm_head->bias.defined()) bias_ = model_->lm_head->bias.detach();
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
  return model::PackedWeights::apply(hidden.contiguous(), packed_, bias_);
}

}  // namespace grpo::rollout
