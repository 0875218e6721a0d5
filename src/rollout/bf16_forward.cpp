#include "bf16_forward.h"

#include "grpo/model/bf16_autocast.h"

namespace grpo::rollout {

model::ForwardOutput rollout_forward(model::Transformer& model, const torch::Tensor& ids, const torch::Tensor& mask,
                                     model::KVCache* cache, bool bf16) {
  model::Bf16Autocast autocast(bf16, model->device());
  return model->forward(ids, mask, cache);
}

torch::Dtype rollout_cache_dtype(const model::Transformer& model, bool bf16) {
  return bf16 ? torch::kBFloat16 : model->dtype();
}

}  // namespace grpo::rollout
