#include "grpo/train/token_batch.h"

#include <algorithm>

#include "grpo/kernels/ops.h"
#include "grpo/train/autocast.h"
#include "grpo/util/error.h"

namespace grpo::train {

TokenBatch make_token_batch(const std::vector<const std::vector<int64_t>*>& prompts,
                            const std::vector<const std::vector<int64_t>*>& completions, int64_t pad_id,
                            torch::Device device, const std::vector<const std::vector<uint8_t>*>& injected) {
  GRPO_REQUIRE(prompts.size() == completions.size(), "make_token_batch: ", prompts.size(), " prompts but ",
               completions.size(), " completions");
  GRPO_REQUIRE(!prompts.empty(), "make_token_batch: empty batch");
  GRPO_REQUIRE(injected.empty() || injected.size() == completions.size(), "make_token_batch: ", injected.size(),
               " tool masks for ", completions.size(), " completions");
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t P = 0, C = 1;  // C >= 1 keeps shapes valid when every completion is empty
  for (int64_t i = 0; i < B; ++i) {
    GRPO_REQUIRE(!prompts[i]->empty(), "make_token_batch: prompt ", i, " is empty");
    P = std::max<int64_t>(P, static_cast<int64_t>(prompts[i]->size()));
    C = std::max<int64_t>(C, static_cast<int64_t>(completions[i]->size()));
  }
  auto ids = torch::full({B, P + C}, pad_id, torch::kInt64);
  auto mask = torch::zeros({B, P + C}, torch::kInt64);
  auto cids = torch::full({B, C}, pad_id, torch::kInt64);
  auto cmask = torch::zeros({B, C}, torch::kFloat32);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  auto ca = cids.accessor<int64_t, 2>();
  auto cm = cmask.accessor<float, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& p = *prompts[i];
    const auto& c = *completions[i];
    const std::vector<uint8_t>* inj = injected.empty() ? nullptr : injected[static_cast<size_t>(i)];
    GRPO_REQUIRE(!inj || inj->empty() || inj->size() == c.size(), "make_token_batch: row ", i, " has a tool mask of ",
                 inj ? inj->size() : 0, " for ", c.size(), " completion tokens");
    if (inj && inj->empty()) inj = nullptr;
    int64_t off = P - static_cast<int64_t>(p.size());
    for (size_t j = 0; j < p.size(); ++j) {
      ia[i][off + static_cast<int64_t>(j)] = p[j];
      ma[i][off + static_cast<int64_t>(j)] = 1;
    }
    for (size_t j = 0; j < c.size(); ++j) {
      ia[i][P + static_cast<int64_t>(j)] = c[j];
      ma[i][P + static_cast<int64_t>(j)] = 1;
      ca[i][static_cast<int64_t>(j)] = c[j];
      cm[i][static_cast<int64_t>(j)] = inj && (*inj)[j] ? 0.0f : 1.0f;  // injected: context only
    }
  }
  return {ids.to(device), mask.to(device), cids.to(device), cmask.to(device), P};
}

CompletionLogprobs completion_logprobs(model::Transformer& model, const TokenBatch& batch, double temperature,
                                       bool bf16, int64_t chunk_size) {
  model::ForwardOutput out;
  {
    Bf16Autocast autocast(bf16, model->device());
    out = model->forward(batch.input_ids, batch.attention_mask);
  }
  const int64_t B = batch.completion_ids.size(0);
  const int64_t C = batch.completion_ids.size(1);
  const int64_t P = batch.prompt_width;
  auto w = model->lm_head ? model->lm_head->weight : model->embed_tokens->weight;
  // [B, C, D]: the states that predict completion tokens, in the head's dtype (after a bf16 forward too)
  auto h = out.hidden.narrow(1, P - 1, C).to(w.scalar_type());
  if (bf16 && w.device().is_cpu()) {
    // CPU bf16: the head's product on bf16 roundings of h and W too (torch.autocast's bf16 lm_head:
    // logits summed in float32, rounded to bf16, widened; log-softmax in float32), as the CPU bf16
    // rollout's head (rollout::DecodeHead), so both score the same logits. The casts are
    // differentiable: the float32 master weight gets the gradient. (CUDA keeps a float32 head: its
    // rollout is float32.)
    h = h.to(torch::kBFloat16);
    w = w.to(torch::kBFloat16);
  }
  auto [logp, ent] = kernels::token_logprobs(h.reshape({B * C, h.size(2)}), w, batch.completion_ids.reshape({B * C}),
                                             temperature > 0 ? temperature : 1.0, chunk_size);
  return {logp.view({B, C}), ent.view({B, C}), out.aux_loss, out.expert_load};
}

torch::Tensor rollout_logprob_matrix(const std::vector<const std::vector<float>*>& logprobs, int64_t columns) {
  const int64_t B = static_cast<int64_t>(logprobs.size());
  auto out = torch::zeros({B, columns}, torch::kFloat32);  // [B, C]
  auto oa = out.accessor<float, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& row = *logprobs[static_cast<size_t>(i)];
    GRPO_REQUIRE(static_cast<int64_t>(row.size()) <= columns, "rollout_logprob_matrix: row ", i, " has ", row.size(),
                 " log-probs for ", columns, " columns");
    for (size_t j = 0; j < row.size(); ++j) oa[i][static_cast<int64_t>(j)] = row[j];
  }
  return out;
}

LogprobMismatch logprob_mismatch(const torch::Tensor& train, const torch::Tensor& rollout, const torch::Tensor& mask) {
  GRPO_REQUIRE(train.sizes() == rollout.sizes() && train.sizes() == mask.sizes(), "logprob_mismatch: shapes ",
               train.sizes(), ", ", rollout.sizes(), ", ", mask.sizes(), " differ");
  torch::NoGradGuard ng;
  // float64: exp(r) - r - 1 of a small r cancels; in float32 it would round to 0 below |r| ~ 3e-4.
  auto r = train.detach().to(torch::kFloat64) - rollout.to(train.device(), torch::kFloat64);  // [B, C]
  auto m = mask.to(train.device(), torch::kFloat64);
  return {(r.abs() * m).sum(), ((r.exp() - r - 1) * m).sum(), m.sum()};
}

}  // namespace grpo::train
