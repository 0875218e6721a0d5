#include "completion_builder.h"

#include <algorithm>
#include <optional>
#include <span>

#include "grpo/tokenizer/tokenizer.h"

namespace grpo::rollout {

namespace {
bool contains(const std::vector<int64_t>& sorted, int64_t x) { return std::binary_search(sorted.begin(), sorted.end(), x); }
}  // namespace

CompletionBuilder::CompletionBuilder(const SamplingParams& params, const std::vector<int64_t>& eos_ids,
                                     const tok::Tokenizer& tok, bool with_tools)
    : params_(&params), eos_ids_(&eos_ids), tok_(&tok), tok_vocab_(tok.vocab_size()), with_tools_(with_tools),
      matcher_(params.stop) {}

Sequence CompletionBuilder::start(int64_t max_new, uint64_t stream) const {
  Sequence s;
  s.max_new = max_new;
  s.stream = stream;
  if (!params_->stop.empty() || with_tools_) s.dec = std::make_unique<IncrementalDecoder>(*tok_);
  return s;
}

bool CompletionBuilder::append(Completion& c, Sequence& s, int64_t token, float logprob) const {
  c.token_ids.push_back(token);
  c.logprobs.push_back(logprob);
  c.tool_mask.push_back(0);
  std::optional<FinishReason> reason;
  if (!params_->ignore_eos && contains(*eos_ids_, token)) {
    reason = FinishReason::EOS;
  } else if (contains(params_->stop_token_ids, token)) {
    reason = FinishReason::STOP_TOKEN;
  } else if (s.dec && token < tok_vocab_) {
    const size_t old = s.dec->text().size();
    s.dec->push(token);
    const int64_t at = matcher_.empty() ? -1 : matcher_.find(s.dec->text(), old, s.tool.floor);
    if (at >= 0) {
      // Keep the tokens whose text lies entirely before the stop string (see docs/rollout.md).
      size_t keep = 0;
      while (keep < s.dec->emitted_tokens() && s.dec->token_end(keep) <= at) ++keep;
      c.token_ids.resize(keep);
      c.logprobs.resize(keep);
      c.tool_mask.resize(keep);
      c.text = s.dec->text().substr(0, at);
      reason = FinishReason::STOP_STRING;
    }
  }
  if (!reason && static_cast<int64_t>(c.token_ids.size()) >= s.max_new) reason = FinishReason::LENGTH;
  if (!reason) return false;
  finish(c, s, *reason);
  return true;
}

bool CompletionBuilder::inject(Completion& c, Sequence& s, const std::vector<int64_t>& ids) const {
  const size_t room = static_cast<size_t>(std::max<int64_t>(0, s.max_new - static_cast<int64_t>(c.token_ids.size())));
  const size_t n = std::min(room, ids.size());
  for (size_t i = 0; i < n; ++i) {
    c.token_ids.push_back(ids[i]);
    c.logprobs.push_back(0.0f);
    c.tool_mask.push_back(1);
    if (s.dec && ids[i] < tok_vocab_) s.dec->push(ids[i]);
  }
  if (s.dec) s.tool.floor = s.dec->text().size();
  if (static_cast<int64_t>(c.token_ids.size()) < s.max_new) return false;
  finish(c, s, FinishReason::LENGTH);
  return true;
}

void CompletionBuilder::finish(Completion& c, Sequence& s, FinishReason reason) const {
  c.finish_reason = reason;
  if (reason != FinishReason::STOP_STRING) {
    std::span<const int64_t> ids(c.token_ids);
    if (reason != FinishReason::LENGTH) ids = ids.first(ids.size() - 1);  // the ending token is not text
    c.text = tok_->decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special=*/true);
  }
  c.completion_length = static_cast<int>(c.token_ids.size());
  s.dec.reset();
}

}  // namespace grpo::rollout
