#pragma once
// Streaming detokenisation of one completion: each new token yields the text it completes, without
// re-decoding the whole completion (the prefix/read-offset method of Hugging Face TGI and vLLM).
// A token that ends inside a UTF-8 character (byte-level BPE) yields "" until the character's last
// byte arrives; decoders that are not concatenative (sentencepiece's leading space) are handled by
// always decoding a short window that starts at an already emitted token.
#include <cstdint>
#include <string>
#include <vector>

namespace grpo::tok {
class Tokenizer;
}

namespace grpo::rollout {

class IncrementalDecoder {
 public:
  /// `tok` must outlive the decoder. Special tokens are skipped (as the returned text does).
  explicit IncrementalDecoder(const tok::Tokenizer& tok);

  /// Appends `id` and returns the new text it completes (possibly ""). Throws grpo::InputError for
  /// an id outside the vocabulary.
  std::string push(int64_t id);

  /// The text so far (the concatenation of every push()'s result).
  const std::string& text() const { return text_; }
  /// token_end(i): length in bytes of text() once token i's text is complete. Tokens whose bytes
  /// end inside a character end where that character ends. Valid for i < emitted_tokens().
  int64_t token_end(size_t i) const { return ends_[i]; }
  /// Tokens whose text is complete (a suffix of tokens may still wait for the rest of a character).
  size_t emitted_tokens() const { return ends_.size(); }
  size_t size() const { return ids_.size(); }

 private:
  const tok::Tokenizer* tok_;
  std::vector<int32_t> ids_;
  std::vector<int64_t> ends_;
  std::string text_;
  size_t prefix_ = 0, read_ = 0;  // decode window [prefix_, ...); tokens before read_ are emitted
};

}  // namespace grpo::rollout
