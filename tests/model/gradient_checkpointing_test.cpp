// Activation checkpointing (Transformer::set_gradient_checkpointing): the same loss, the same
// parameter gradients and the same MoE load statistics as without it, on a tiny float32 CPU model
// with a dense block and MoE blocks (routed + shared experts, aux loss), on a right-padded batch.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

#include <ATen/autocast_mode.h>

#include "grpo/model/transformer.h"

namespace grpo::model {
namespace {

ModelSpec mixed_spec() {
  config::ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  c.moe.num_experts = 4;
  c.moe.num_experts_per_tok = 2;
  c.moe.n_shared_experts = 1;
  c.moe.moe_intermediate_size = 24;
  c.moe.first_k_dense_replace = 1;  // layer 0 dense, layers 1-2 MoE
  c.moe.router_aux_loss_coef = 0.01;
  c.moe.bias_update_speed = 0.001;
  return spec_from_config(c);
}

struct Pass {
  double loss = 0;
  std::map<std::string, torch::Tensor> grads;
  std::vector<torch::Tensor> pending;  // per MoE layer [E]
  std::set<std::string> graph_nodes;   // names of the autograd nodes of the loss
};

void collect_nodes(const std::shared_ptr<torch::autograd::Node>& n, std::set<std::string>& names,
                   std::set<const torch::autograd::Node*>& seen) {
  if (!n || !seen.insert(n.get()).second) return;
  names.insert(n->name());
  for (const auto& e : n->next_edges()) collect_nodes(e.function, names, seen);
}

Pass run(Transformer& model, bool checkpointing, const torch::Tensor& ids, const torch::Tensor& mask,
        const torch::Tensor& targets) {
  model->zero_grad();
  for (size_t i = 0; i < model->layers->size(); ++i)
    if (auto& b = model->layers->at<BlockImpl>(i); b.moe) b.moe->pending_load().zero_();
  model->set_gradient_checkpointing(checkpointing);
  auto out = model->forward(ids, mask);
  auto logits = model->logits(out.hidden);  // [B, T, V]
  auto nll = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                                  torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto m = mask.reshape({-1}).to(torch::kFloat32);
  auto loss = (nll * m).sum() / m.sum() + model->spec().moe.router_aux_loss_coef * out.aux_loss;
  Pass r;
  std::set<const torch::autograd::Node*> seen;
  collect_nodes(loss.grad_fn(), r.graph_nodes, seen);
  loss.backward();
  r.loss = loss.item<double>();
  for (const auto& p : model->named_parameters())
    if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
  for (size_t i = 0; i < model->layers->size(); ++i)
    if (auto& b = model->layers->at<BlockImpl>(i); b.moe) r.pending.push_back(b.moe->pending_load().clone());
  return r;
}

TEST(GradientCheckpointing, SameGradientsDenseAndMoe) {
  torch::manual_seed(3);
  Transformer model(mixed_spec());
  model->train();
  const int64_t B = 3, T = 11;
  auto ids = torch::randint(0, 61, {B, T}, torch::kInt64);
  auto targets = torch::randint(0, 61, {B, T}, torch::kInt64);
  auto mask = torch::ones({B, T}, torch::kInt64);
  mask.index_put_({1, torch::indexing::Slice(7)}, 0);  // right padding
  mask.index_put_({2, torch::indexing::Slice(4)}, 0);

  auto plain = run(model, false, ids, mask, targets);
  auto ckpt = run(model, true, ids, mask, targets);

  // The switch did something: the checkpointed graph has the checkpoint node, the plain one not.
  auto has_ckpt = [](const Pass& r) {
    for (const auto& n : r.graph_nodes)
      if (n.find("BlockCheckpoint") != std::string::npos) return true;
    return false;
  };
  EXPECT_FALSE(has_ckpt(plain));
  EXPECT_TRUE(has_ckpt(ckpt));

  // Same forward, so the loss is bit-identical; gradients differ at most by the summation order
  // of the reentrant backward (float32 rounding): 1e-6 relative to the tensor's max magnitude.
  EXPECT_EQ(plain.loss, ckpt.loss);
  ASSERT_EQ(plain.grads.size(), model->parameters().size());
  ASSERT_EQ(plain.grads.size(), ckpt.grads.size());
  for (const auto& [name, g] : plain.grads) {
    ASSERT_TRUE(ckpt.grads.count(name)) << name << " has no gradient with checkpointing";
    const auto& h = ckpt.grads.at(name);
    const double scale = g.abs().max().item<double>();
    const double diff = (g.to(torch::kFloat64) - h.to(torch::kFloat64)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6 * std::max(scale, 1e-30)) << name << ": max |diff| " << diff << ", max |grad| " << scale;
    if (name.find("gate.weight") != std::string::npos) EXPECT_GT(scale, 0) << name << ": the router gets no gradient";
  }
  // The recomputation in backward does not count the expert load twice.
  ASSERT_EQ(plain.pending.size(), 2u);
  ASSERT_EQ(ckpt.pending.size(), 2u);
  for (size_t i = 0; i < plain.pending.size(); ++i) EXPECT_TRUE(torch::equal(plain.pending[i], ckpt.pending[i])) << "MoE layer " << i;
}

// The recomputation runs in the forward's precision even though backward runs after the autocast
// scope ended (CPU bf16 autocast here; the trainer's is CUDA's, same mechanism). Recomputed in
// float32 instead, the gradients would differ by bf16 rounding (~1e-2 relative).
TEST(GradientCheckpointing, RecomputesUnderTheForwardsAutocast) {
  torch::manual_seed(5);
  Transformer model(mixed_spec());
  model->train();
  auto ids = torch::randint(0, 61, {2, 9}, torch::kInt64);
  auto targets = torch::randint(0, 61, {2, 9}, torch::kInt64);
  auto mask = torch::ones({2, 9}, torch::kInt64);
  auto grads = [&](bool ckpt) {
    model->zero_grad();
    model->set_gradient_checkpointing(ckpt);
    torch::Tensor loss;
    {
      at::autocast::set_autocast_enabled(at::kCPU, true);
      at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
      at::autocast::increment_nesting();
      auto out = model->forward(ids, mask);
      auto logits = model->logits(out.hidden).to(torch::kFloat32);
      loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1})) +
             0.01 * out.aux_loss;
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      at::autocast::set_autocast_enabled(at::kCPU, false);
    }
    loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (const auto& p : model->named_parameters())
      if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
    return g;
  };
  auto plain = grads(false);
  auto ckpt = grads(true);
  ASSERT_EQ(plain.size(), ckpt.size());
  for (const auto& [name, g] : plain) {
    const double scale = g.abs().max().item<double>();
    const double diff = (g.to(torch::kFloat64) - ckpt.at(name).to(torch::kFloat64)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-5 * std::max(scale, 1e-30)) << name << ": max |diff| " << diff << ", max |grad| " << scale;
  }
}

TEST(GradientCheckpointing, NoEffectWithoutGradOrWithACache) {
  torch::manual_seed(4);
  Transformer model(mixed_spec());
  model->set_gradient_checkpointing(true);
  auto ids = torch::randint(0, 61, {2, 5}, torch::kInt64);
  torch::NoGradGuard ng;
  auto out = model->forward(ids);
  EXPECT_FALSE(out.hidden.requires_grad());
  auto cache = model->make_cache(2, 8);
  auto out2 = model->forward(ids, {}, &cache);
  EXPECT_TRUE(torch::allclose(out.hidden, out2.hidden, 1e-5, 1e-5));
}

}  // namespace
}  // namespace grpo::model
