#include "sft_stage.h"

#include <chrono>
#include <cmath>

#include "grpo/train/sft_response.h"
#include "grpo/train/token_batch.h"

namespace grpo::train {

SftStage::SftStage(const config::Config& cfg, StageSettings settings, Policy& policy,
                   std::shared_ptr<dist::Distributed> dist)
    : StageRunner(cfg, std::move(settings), policy, std::move(dist)) {
  const auto& field = settings_.response_field;
  for (const auto& r : train_data_->records())
    GRPO_REQUIRE(r.row.contains(field) && r.row[field].is_string(), r.where(), ": sft needs a string field '", field,
                 "' (stages[].response_field) with the response to train on");
}

bool SftStage::train_step(std::map<std::string, double>& m) {
  auto t0 = std::chrono::steady_clock::now();
  const int world = dist_ ? dist_->world_size() : 1;
  const int rank = dist_ ? dist_->rank() : 0;
  const int64_t mb = settings_.per_device_train_batch_size;
  const int ga = cfg_.trainer.gradient_accumulation_steps;
  auto global = loader_->next_batch(mb * ga * world);

  // Tokenise this rank's slice: prompt ids, response ids + EOS. With rollout.tools on, the tool
  // results in a response are tokenised as the engine injects them and left out of the loss.
  std::vector<std::vector<int64_t>> prompts, responses;
  std::vector<std::vector<uint8_t>> injected;
  const int64_t eos = policy_.eos_ids.empty() ? -1 : policy_.eos_ids.front();
  for (int64_t i = 0; i < mb * ga; ++i) {
    const auto* r = global[static_cast<size_t>(rank * mb * ga + i)];
    prompts.push_back(encode_prompt(policy_, prompt_messages(*r, cfg_)));
    auto resp = tokenize_sft_response(
        *policy_.tokenizer, cfg_.rollout.tools,
        sft_response_after_prefix(r->row[settings_.response_field].get<std::string>(), cfg_.tokenizer.assistant_prefix));
    if (eos >= 0) resp.ids.push_back(eos), resp.injected.push_back(0);
    // Keep the sequence within the model's context.
    int64_t room = policy_.model->spec().max_position_embeddings - static_cast<int64_t>(prompts.back().size());
    const auto keep = static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(room, static_cast<int64_t>(resp.ids.size()))));
    resp.ids.resize(keep), resp.injected.resize(keep);
    responses.push_back(std::move(resp.ids));
    injected.push_back(std::move(resp.injected));
  }
  double local_tokens = 0;  // the policy's tokens: the loss's count
  for (const auto& r : injected)
    for (uint8_t t : r) local_tokens += t ? 0.0 : 1.0;
  // Mean over the tokens of the whole step on all ranks; gradients are averaged over ranks.
  double denom = dist_ && world > 1 ? dist_->global_normalizer(local_tokens) : local_tokens;
  denom = std::max(1.0, denom);

  // The step's loss and correct-token count stay on the device ([] float64, summed in micro-batch
  // order) until the one copy that reads them (StepMetrics::fetch).
  StepMetrics sm;
  torch::Tensor loss_total, correct;
  int64_t pad = policy_.tokenizer->special().pad.value_or(static_cast<int32_t>(std::max<int64_t>(eos, 0)));
  const double aux_coef = policy_.model->spec().moe.num_experts > 0 ? policy_.model->spec().moe.router_aux_loss_coef : 0.0;
  for (int k = 0; k < ga; ++k) {
    std::vector<const std::vector<int64_t>*> ps, cs;
    std::vector<const std::vector<uint8_t>*> is;
    for (int64_t i = k * mb; i < (k + 1) * mb; ++i) {
      const auto row = static_cast<size_t>(i);
      ps.push_back(&prompts[row]), cs.push_back(&responses[row]), is.push_back(&injected[row]);
    }
    auto tb = make_token_batch(ps, cs, pad, policy_.model->device(), is);
    if (reducer_) reducer_->set_sync(k + 1 == ga);
    auto lp = completion_logprobs(policy_.model, tb, 1.0, cfg_.trainer.bf16, cfg_.kernels.logprob_chunk_size);
    auto loss = -(lp.logprobs * tb.completion_mask).sum() / denom;
    if (aux_coef > 0) loss = loss + lp.aux_loss * (aux_coef / ga);
    sum_into(loss_total, loss);
    loss.backward();
    torch::NoGradGuard ng;
    // Fraction of response tokens the model gives probability > 1/2 (then surely its argmax).
    sum_into(correct, ((lp.logprobs.detach() > std::log(0.5)).to(torch::kFloat32) * tb.completion_mask).sum());
  }
  sm.add_mean("loss", loss_total);
  sm.add_mean("token_prob_above_half", correct, std::max(1.0, local_tokens));
  sm.add_sum("num_tokens", local_tokens);
  const double loss_value = sm.value("loss");  // the step's one device-to-host copy
  bool finite = ranks_agree_finite(std::isfinite(loss_value));
  double norm = 0;
  if (finite) norm = apply_gradients(sm);
  else discard_gradients(), sm.add_mean("grad_norm", NAN);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sm.add_mean("time/update", secs);
  sm.add_sum("tokens_per_second", local_tokens / std::max(1e-9, secs));
  for (const auto& [k, v] : reduce_metrics(sm)) m[k] = v;
  return finite && std::isfinite(norm);
}

}  // namespace grpo::train
