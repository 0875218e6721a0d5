#pragma once
// The one tokenizer interface the rest of grpo uses (rollout, data, rewards that count tokens).
// Implementations: BpeTokenizer (byte-level BPE from a Hugging Face tokenizer.json or GGUF
// metadata) and SentencePieceTokenizer (.model files). load_tokenizer() picks one from config.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "grpo/config/model_config.h"

namespace grpo::tok {

/// Ids of the tokens with a role. A model may declare several end-of-sequence ids (e.g. Llama-3
/// Instruct: <|end_of_text|>, <|eot_id|>); generation stops at any of them.
struct SpecialTokens {
  std::optional<int32_t> bos, pad, unk;
  std::vector<int32_t> eos;
  /// Whether a prompt should start with bos (tokenizer.ggml.add_bos_token, HF add_bos_token,
  /// sentencepiece models trained by `grpo tokenizer train`). encode() itself never adds it.
  bool add_bos = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Text -> ids. Special/added tokens written inline in the text (e.g. "<|im_start|>") are
  /// matched as single tokens before the text is split, as HF `tokenizers` does. No bos/eos is
  /// added. Never throws on any byte string (invalid UTF-8 is encoded byte by byte).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;

  /// Ids -> text. Byte-level tokens are joined as bytes and invalid UTF-8 becomes U+FFFD, as HF
  /// `tokenizers` decodes. `skip_special` drops special/control tokens. Throws grpo::InputError
  /// for an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = false) const = 0;

  /// Number of ids (largest id + 1).
  virtual int32_t vocab_size() const = 0;

  /// The token's piece as stored in the vocabulary (byte-level pieces use GPT-2's byte-to-unicode
  /// alphabet, e.g. "Ġthe"; sentencepiece pieces use "▁"). Throws grpo::InputError when out of range.
  virtual std::string piece(int32_t id) const = 0;

  /// The id of a piece (exact vocabulary string; added tokens by content), or nullopt.
  virtual std::optional<int32_t> find_token(std::string_view piece) const = 0;

  /// True for special/control tokens (those decode(skip_special=true) drops).
  virtual bool is_special(int32_t id) const = 0;

  /// The model's own chat template source (Jinja) when the file carries one, else "".
  virtual const std::string& chat_template_source() const { return chat_template_; }

  /// Short description for logs: "bpe (tokenizer.json, 49152 tokens)".
  virtual std::string describe() const = 0;

  const SpecialTokens& special() const { return special_; }
  bool is_eos(int32_t id) const;

 protected:
  SpecialTokens special_;
  std::string chat_template_;
};

/// Opens a tokenizer. `cfg.path` empty means the model's own: `model_path` (a .gguf file, or a
/// Hugging Face directory holding tokenizer.json or tokenizer.model). With type AUTO the kind is
/// taken from the file: *.gguf -> GGUF metadata, *.json or a directory with tokenizer.json ->
/// BPE, *.model -> sentencepiece. Throws grpo::InputError naming the file when it is missing,
/// malformed or of an unsupported kind.
std::unique_ptr<Tokenizer> load_tokenizer(const config::TokenizerConfig& cfg, const std::string& model_path = "");

/// Same, from a path only (type AUTO).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace grpo::tok
