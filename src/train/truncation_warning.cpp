#include "grpo/train/truncation_warning.h"

#include <algorithm>

#include "grpo/util/error.h"

namespace grpo::train {

TruncationWarning::TruncationWarning(int64_t max_completion_length, int64_t every)
    : max_len_(max_completion_length), every_(std::max<int64_t>(1, every)) {}

std::string TruncationWarning::observe(int64_t step, double truncated_ratio) {
  if (!(truncated_ratio >= 1.0)) {
    in_a_row_ = 0;
    return "";
  }
  ++in_a_row_;
  if ((in_a_row_ - 1) % every_ != 0) return "";
  std::string msg = str("step ", step, ": every completion was truncated at rollout.max_completion_length = ", max_len_,
                        " tokens (none ended with an end-of-sequence token), so rewards that need a finished answer "
                        "score nothing; raise rollout.max_completion_length");
  if (in_a_row_ > 1) msg += str(" (", in_a_row_, " steps in a row; repeated every ", every_, " steps while it lasts)");
  return msg;
}

}  // namespace grpo::train
