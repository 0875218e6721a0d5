#include "grpo/model/transformer.h"

#include "checkpointed_block.h"

#include "rotary.h"
#include "grpo/util/error.h"

namespace grpo::model {

TransformerImpl::TransformerImpl(ModelSpec spec) : spec_(std::move(spec)) {
  spec_.validate("model spec (" + spec_.architecture + ")");
  const auto& s = spec_;
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(s.vocab_size, s.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < s.num_hidden_layers; ++i) layers->push_back(Block(s, i));
  norm = register_module("norm", RMSNorm(s.hidden_size, s.rms_norm_eps));
  if (!s.tie_word_embeddings)
    lm_head = register_module("lm_head",
                              torch::nn::Linear(torch::nn::LinearOptions(s.hidden_size, s.vocab_size).bias(false)));
  inv_freq_ = rope_inv_freq(s);

  torch::NoGradGuard ng;
  for (auto& p : named_parameters()) {
    const auto& name = p.key();
    if (name.ends_with("layernorm.weight") || name.ends_with("norm.weight"))
      p.value().fill_(1.0);
    else if (name.ends_with(".bias"))
      p.value().zero_();
    else
      p.value().normal_(0.0, s.initializer_range);
  }
}

torch::Dtype TransformerImpl::dtype() const { return embed_tokens->weight.scalar_type(); }
torch::Device TransformerImpl::device() const { return embed_tokens->weight.device(); }

KVCache TransformerImpl::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache(spec_, batch, capacity, dtype(), device());
}

ForwardOutput TransformerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                       KVCache* cache) {
  GRPO_REQUIRE(input_ids.dim() == 2, "Transformer::forward: input_ids must be [batch, seq], got ", input_ids.sizes());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  auto ids = input_ids.to(device(), torch::kInt64);
  if (ids.numel() > 0) {
    const auto lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    GRPO_REQUIRE(lo >= 0 && hi < spec_.vocab_size, "Transformer::forward: token id ", (lo < 0 ? lo : hi),
                 " outside the vocabulary [0, ", spec_.vocab_size, ")");
  }
  const auto dev = ids.device();
  auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(dev);
  torch::Tensor mask = attention_mask.defined() ? attention_mask.to(dev).to(torch::kBool) : torch::ones({B, T}, bool_opts);
  GRPO_REQUIRE(mask.sizes() == ids.sizes(), "Transformer::forward: attention_mask ", mask.sizes(),
               " does not match input_ids ", ids.sizes());

  torch::Tensor positions, attn;  // [B, T] int64; [B, 1, T, S] bool
  auto q_idx = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  if (cache) {
    GRPO_REQUIRE(cache->batch() == B, "Transformer::forward: cache holds ", cache->batch(), " rows, input has ", B);
    if (T > 1)
      GRPO_REQUIRE(!(mask.narrow(1, 1, T - 1).logical_and(mask.narrow(1, 0, T - 1).logical_not())).any().item<bool>(),
                   "Transformer::forward: with a KV cache the attention mask must be right-padded (ones first)");
    positions = cache->lengths().to(dev).view({B, 1}) + q_idx.view({1, T});  // = the tokens' cache slots
    const int64_t S = cache->max_length() + T;
    auto k_slot = torch::arange(S, positions.options()).view({1, 1, S});
    auto q_slot = positions.unsqueeze(2);  // [B, T, 1]
    attn = k_slot <= q_slot;
    if (spec_.sliding_window > 0) attn = attn.logical_and(q_slot - k_slot < spec_.sliding_window);
    attn = attn.unsqueeze(1);
  } else {
    positions = (mask.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
    auto causal = q_idx.view({T, 1}) >= q_idx.view({1, T});
    if (spec_.sliding_window > 0) causal = causal.logical_and(q_idx.view({T, 1}) - q_idx.view({1, T}) < spec_.sliding_window);
    attn = causal.view({1, T, T}).logical_and(mask.view({B, 1, T}));
    // A padding query with no visible key would give NaN; letting it see itself keeps the output
    // finite and cannot change any real token (a real query already sees itself).
    attn = attn.logical_or(torch::eye(T, bool_opts).view({1, T, T})).unsqueeze(1);
  }
  auto [cos, sin] = rope_cos_sin(inv_freq_, positions);
  auto valid = mask.to(torch::kFloat32).reshape({-1});

  ForwardOutput out;
  auto h = embed_tokens(ids);
  torch::Tensor tok_sum, prob_sum, rows;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto& blk = layers->at<BlockImpl>(i);
    const bool ckpt = gradient_checkpointing_ && !cache && torch::GradMode::is_enabled() && h.requires_grad();
    auto [y, stats] = block_runner_ ? block_runner_(i, blk, h, cos, sin, attn, cache, valid)
                      : ckpt        ? checkpointed_block_forward(blk, h, cos, sin, attn, valid)
                                    : blk.forward(h, cos, sin, attn, cache, valid);
    h = y;
    if (stats) {
      out.moe_layers.push_back(static_cast<int64_t>(i));
      out.expert_load.push_back(stats->load);
      tok_sum = tok_sum.defined() ? tok_sum + stats->aux_tokens : stats->aux_tokens;
      prob_sum = prob_sum.defined() ? prob_sum + stats->aux_probs : stats->aux_probs;
      rows = rows.defined() ? rows + stats->valid_tokens : stats->valid_tokens;
    }
  }
  if (cache) cache->advance(mask.to(torch::kInt64).sum(1));
  out.hidden = norm(h);
  if (tok_sum.defined()) {
    // HF load_balancing_loss_func: E * sum_e (fraction of assignments to e) * (mean router prob of e),
    // both averaged over every (layer, valid token) row.
    auto denom = rows.clamp_min(1.0);
    out.aux_loss = (tok_sum / denom * (prob_sum / denom)).sum() * static_cast<double>(spec_.moe.num_experts);
  } else {
    out.aux_loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  }
  return out;
}

torch::Tensor TransformerImpl::logits(const torch::Tensor& hidden) {
  if (lm_head) return lm_head(hidden);
  return torch::nn::functional::linear(hidden, embed_tokens->weight);
}

void TransformerImpl::update_expert_bias() {
  if (spec_.moe.bias_update_speed <= 0) return;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto& blk = layers->at<BlockImpl>(i);
    if (blk.moe) blk.moe->update_bias(spec_.moe.bias_update_speed);
  }
}

}  // namespace grpo::model
