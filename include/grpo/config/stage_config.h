#pragma once
// stages: a training pipeline, e.g. the DeepSeek-R1 recipe sft -> grpo (-> rejection-sampled sft
// -> grpo). Each stage starts from the previous stage's final weights; `grpo train` runs them in
// order and, when resumed, continues in the stage that was running.
#include <optional>
#include <string>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class StageKind { SFT, GRPO };
template <> struct EnumNames<StageKind> {
  static constexpr std::pair<StageKind, std::string_view> items[] = {{StageKind::SFT, "sft"}, {StageKind::GRPO, "grpo"}};
};

struct StageConfig {
  StageKind kind = StageKind::GRPO;
  int max_steps = 0;                       // 0: trainer.max_steps
  std::optional<double> learning_rate;     // null: optimizer.learning_rate
  int per_device_train_batch_size = 0;     // 0: trainer.per_device_train_batch_size
  std::string response_field = "solution";  // sft: the dataset field with the target response
  template <class V> void visit(V& v) {
    v("kind", kind, "sft (supervised, loss on response tokens only) or grpo.");
    v("max_steps", max_steps, "Optimizer steps of this stage; 0 = trainer.max_steps.", at_least(0));
    v("learning_rate", learning_rate, "Learning rate of this stage; null = optimizer.learning_rate.", greater_than(0));
    v("per_device_train_batch_size", per_device_train_batch_size, "Micro-batch size of this stage; 0 = trainer.per_device_train_batch_size.", at_least(0));
    v("response_field", response_field, "sft: dataset field holding the response to imitate.");
  }
};

}  // namespace grpo::config
