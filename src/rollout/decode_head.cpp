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

DecodeHead::DecodeHead(model::Transformer model, int64_t max_rows, bool allow_packing, bool bf16)
    : model_(std::move(model)) {
  const torch::Tensor& w = model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight;
  const bool has_bias = model_->lm_head && model_->lm_head->bias.defined();
  weight_impl_ = w.unsafeGetTensorImpl();
  bf16_ = bf16;
  if (!w.is_inference()) weight_version_ = static_cast<int64_t>(w._version());
  torch::NoGradGuard no_grad;
  if (bf16_) {
    // Rounded to nearest even once per head, as autocast's cast of the weight (and packed from it).
    weight_bf16_ = w.detach().to(torch::kBFloat16);
    if (has_bias) bias_ = model_->lm_head->bias.detach().to(torch::kBFloat16);
  }
  if (!allow_packing || !packing_enabled() || !w.device().is_cpu() || w.scalar_type() != torch::kFloat32 ||
      !model::PackedWeights::ops_registered())
    return;
  try {
    packed_ = model::PackedWeights::pack(bf16_ ? weight_bf16_ : w, std::max<int64_t>(max_rows, 1));
  } catch (const c10::Error&) {
    // The plain head instead of failing the rollout.
    packed_ = torch::Tensor();
    return;
  }
  if (bf16_) weight_bf16_ = torch::Tensor();  // the packed copy serves instead
  if (has_bias && !bf16_) bias_ = model_->lm_head->bias.detach();
}

bool DecodeHead::up_to_date() const {
  const torch::Tensor& w = model_->lm_head ? model_->lm_head->weight : model_->embed_tokens->weight;
  if (w.unsafeGetTensorImpl() != weight_impl_) return false;
  // The plain float32 path reads the live weight; the packed copy and the bf16 copy are snapshots.
  if (!packed_.defined() && !weight_bf16_.defined()) return true;
  return !w.is_inference() && weight_version_ == static_cast<int64_t>(w._version());
}

torch::Tensor DecodeHead::operator()(const torch::Tensor& hidden) const {
  if (bf16_) {
    // The product of bf16 roundings of hidden and weight, float32 sums, logits rounded to bf16 and
    // widened: what the bf16 training forward's head computes (train::completion_logprobs).
    torch::NoGradGuard no_grad;
    const auto hb = hidden.to(torch::kBFloat16).contiguous();
    if (packed_.defined()) return model::PackedWeights::apply(hb, packed_, bias_).to(torch::kFloat32);
    return torch::nn::functional::linear(hb, weight_bf16_, bias_).to(torch::kFloat32);
  }
  if (!packed_.defined()) return model_->logits(hidden);
  return model::PackedWeights::apply(hidden.contiguous(), packed_, bias_);
}

}  // namespace grpo::rollout
