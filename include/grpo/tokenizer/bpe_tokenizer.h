#pragma once
// Byte-level BPE (GPT-2 / Llama-3 / Qwen2 / SmolLM2 family), our own implementation, loaded from a
// Hugging Face tokenizer.json or from GGUF metadata (tokenizer.ggml.model = "gpt2").
//
// encode(text), following HF `tokenizers` (tokenizer/mod.rs, models/bpe/model.rs):
//   1. added tokens are cut out first, leftmost-longest (lstrip/rstrip honoured);
//   2. each remaining segment is NFC-normalised when the tokenizer.json asks for it, then goes through the pre-tokenizer steps (Digits, the split regex of
//      pretokenizer.h, ByteLevel's optional prefix space) and each word is mapped byte -> unicode;
//   3. each word is merged by BPE: repeatedly the adjacent pair with the lowest merge rank (the
//      leftmost on ties) is replaced by its merged token (Sennrich et al. 2016), unless
//      ignore_merges is set and the whole word is a token (Llama-3). Words are cached.
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "grpo/tokenizer/pretokenizer.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/gguf.h"

namespace grpo::tok {

class BpeTokenizer final : public Tokenizer {
 public:
  /// One step of the pre-tokenizer pipeline, applied to every piece the previous step produced.
  struct PreStep {
    enum Kind { SPLIT, DIGITS } kind = SPLIT;
    SplitPattern pattern = SplitPattern::GPT2;  // SPLIT
    bool individual_digits = false;             // DIGITS
  };
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false;
    bool lstrip = false, rstrip = false;
  };

  /// Loads a tokenizer.json (model.type BPE with a ByteLevel pre-tokenizer/decoder). Special-token
  /// roles come from tokenizer_config.json / config.json / generation_config.json beside it when
  /// present (bos_token, eos_token, pad_token, unk_token, eos_token_id as int or list), and the chat
  /// template from tokenizer_config.json or chat_template.jinja. Throws grpo::InputError naming the
  /// file and the key for malformed JSON, a non-BPE model, an unsupported pre-tokenizer (a Split
  /// regex other than GPT-2/Llama-3/Qwen2's), merges naming unknown tokens, and duplicate ids.
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& path);

  /// Builds from GGUF metadata: tokenizer.ggml.{tokens, merges, token_type, bos/eos/padding/
  /// unknown_token_id, eos_token_ids, add_bos_token, pre} and tokenizer.chat_template. Tokens of
  /// type CONTROL (3) and USER_DEFINED (4) become added tokens (CONTROL ones special). The split
  /// regex follows llama.cpp's mapping of tokenizer.ggml.pre (llama-vocab.cpp): "gpt2"/"default"/
  /// "starcoder"/"smollm"/... Throws grpo::InputError naming the file when the tokenizer metadata
  /// is absent, tokenizer.ggml.model is not "gpt2", or tokenizer.ggml.pre is unknown.
  static std::unique_ptr<BpeTokenizer> from_gguf(const gguf::File& file);
  static std::unique_ptr<BpeTokenizer> from_gguf(const std::string& path);

  /// Builds from parts (what the two loaders produce); `tokens[i]` is the piece of id i in the
  /// byte-level alphabet, `merges` are pairs of pieces in rank order, added tokens carry their own
  /// ids. `source` names the origin in error messages. Throws grpo::InputError for a merge whose
  /// parts or result are not tokens.
  BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::pair<std::string, std::string>>& merges,
               std::vector<AddedToken> added, std::vector<PreStep> pre_steps, bool add_prefix_space,
               bool ignore_merges, std::optional<int32_t> unk, std::string source);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  std::string piece(int32_t id) const override;
  std::optional<int32_t> find_token(std::string_view piece) const override;
  bool is_special(int32_t id) const override;
  std::string describe() const override;

  const std::vector<PreStep>& pre_steps() const { return pre_steps_; }
  SpecialTokens& mutable_special() { return special_; }
  void set_chat_template(std::string s) { chat_template_ = std::move(s); }
  /// Apply NFC to the text between added tokens before pre-tokenizing (HF "NFC" normalizer).
  void set_nfc(bool on) { nfc_ = on; }

 private:
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge_symbols(std::vector<int32_t>& sym) const;
  void encode_segment(std::string_view seg, std::vector<int32_t>& out) const;

  std::vector<std::string> pieces_;  // id -> piece ("" for holes in the id space)
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, merged id)
  std::vector<AddedToken> added_;                                    // longest first
  std::array<std::vector<uint32_t>, 256> added_by_byte_;            // indices into added_ by first byte
  std::vector<uint8_t> special_flag_;
  std::vector<uint8_t> added_flag_;
  std::vector<PreStep> pre_steps_;
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;
  bool nfc_ = false;
  std::optional<int32_t> unk_;
  std::array<int32_t, 256> byte_ids_{};  // id of each byte's single-char piece, -1 if absent
  std::string source_;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace grpo::tok
