#pragma once
// Supervised fine-tuning (the cold start of the DeepSeek-R1 recipe): next-token cross-entropy on
// the response tokens only (the prompt is context), response = the dataset field
// stages[i].response_field followed by the tokenizer's EOS. The loss of an optimizer step is the
// sum over its response tokens divided by their count over the whole step (all micro-batches and
// ranks), so gradient accumulation does not change it. With rollout.tools on, the tool results in a
// response are tokenised as the rollout engine injects them and left out of the loss and its count
// (tokenize_sft_response, sft_response.h): the policy learns to call and to read, not to print.
#include "grpo/train/stage_runner.h"

namespace grpo::train {

class SftStage : public StageRunner {
 public:
  SftStage(const config::Config& cfg, StageSettings settings, Policy& policy, std::shared_ptr<dist::Distributed> dist);

 protected:
  bool train_step(std::map<std::string, double>& metrics) override;
};

}  // namespace grpo::train
