#include "grpo/rollout/completion.h"

namespace grpo::rollout {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::EOS: return "eos";
    case FinishReason::STOP_STRING: return "stop_string";
    case FinishReason::STOP_TOKEN: return "stop_token";
    case FinishReason::LENGTH: return "length";
  }
  return "unknown";
}

}  // namespace grpo::rollout
