#include "grpo/train/autocast.h"

#include "grpo/model/block.h"
#include "grpo/model/lora.h"

namespace grpo::train {

int64_t bf16_frozen_linears(model::Transformer& frozen, bool bf16) {
  if (!bf16 || !frozen->device().is_cpu()) return 0;
  torch::NoGradGuard ng;
  int64_t n = 0;
  auto round = [&](torch::nn::Linear& l) {
    if (model::lora_adapter(*l)) return;
    for (auto* t : {&l->weight, &l->bias}) {
      if (!t->defined() || t->scalar_type() != torch::kFloat32 || t->requires_grad()) continue;
      t->set_data(t->to(torch::kBFloat16));
      ++n;
    }
  };
  for (auto& m : *frozen->layers) {
    auto* block = m->as<model::BlockImpl>();
    if (!block) continue;
    auto& a = block->self_attn;
    if (a->linear_impl == model::LinearImpl::PLAIN)
      for (auto* l : {&a->q_proj, &a->k_proj, &a->v_proj, &a->o_proj}) round(*l);
    auto& mlp = block->mlp;
    if (mlp && mlp->linear_impl == model::LinearImpl::PLAIN)
      for (auto* l : {&mlp->gate_proj, &mlp->up_proj, &mlp->down_proj}) round(*l);
  }
  return n;
}

}  // namespace grpo::train
