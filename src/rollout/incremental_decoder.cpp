#include "grpo/rollout/incremental_decoder.h"

#include <span>

#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"

namespace grpo::rollout {

namespace {
// A token sequence that stays incomplete this long is not waiting for the rest of a character
// (UTF-8 needs at most 4 bytes, i.e. at most 4 byte tokens): it is invalid for good and is emitted
// with its U+FFFD, so a model that samples garbage bytes cannot make decoding quadratic.
constexpr size_t kMaxPending = 8;

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

IncrementalDecoder::IncrementalDecoder(const tok::Tokenizer& tok) : tok_(&tok) {}

std::string IncrementalDecoder::push(int64_t id) {
  GRPO_REQUIRE(id >= 0 && id < tok_->vocab_size(), "token id ", id, " is outside the tokenizer's vocabulary [0, ",
               tok_->vocab_size(), ")");
  ids_.push_back(static_cast<int32_t>(id));
  std::span<const int32_t> all(ids_);
  const std::string before = tok_->decode(all.subspan(prefix_, read_ - prefix_), /*skip_special=*/true);
  const std::string now = tok_->decode(all.subspan(prefix_), /*skip_special=*/true);
  const bool incomplete = ends_with_replacement(now) && ids_.size() - read_ < kMaxPending;
  if (incomplete) return "";
  // The window's text extends the already emitted `before` (the reason for decoding a window that
  // starts at an emitted token: sentencepiece drops the leading space of a window's first token).
  std::string delta = now.size() > before.size() ? now.substr(before.size()) : std::string();
  text_ += delta;
  for (size_t i = read_; i < ids_.size(); ++i) ends_.push_back(static_cast<int64_t>(text_.size()));
  if (!delta.empty()) prefix_ = read_;
  read_ = ids_.size();
  return delta;
}

}  // namespace grpo::rollout
