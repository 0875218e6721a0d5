#pragma once
// sentencepiece .model files (Kudo & Richardson 2018) through the sentencepiece library, and the
// trainer behind `grpo tokenizer train` for models trained from scratch.
#include <memory>
#include <string>
#include <vector>

#include "grpo/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace grpo::tok {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  /// Loads a .model file. Throws grpo::InputError naming the file when it is missing or not a
  /// sentencepiece model. bos/eos/pad/unk come from the model (absent when the id is -1);
  /// add_bos is true when the model has a bos piece.
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;

  /// User-defined symbols (e.g. "<think>") are matched as whole pieces by sentencepiece itself.
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override;
  std::string piece(int32_t id) const override;
  std::optional<int32_t> find_token(std::string_view piece) const override;
  /// Control pieces (<s>, </s>, <pad>) and <unk>.
  bool is_special(int32_t id) const override;
  std::string describe() const override;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
};

/// Options of `grpo tokenizer train`.
struct SentencePieceTrainOptions {
  std::string input;                      // text file, one sentence/document per line
  std::string model_prefix;               // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 8000;
  std::string model_type = "bpe";         // bpe | unigram | char | word
  std::vector<std::string> user_defined_symbols;  // always single pieces, e.g. <think>, </think>
  bool byte_fallback = true;              // unknown characters become <0xNN> byte pieces, never <unk>
  double character_coverage = 0.9995;
  bool hard_vocab_limit = true;           // false: vocab_size is an upper bound when the corpus has fewer merges
  int64_t input_sentence_size = 0;        // 0: use every line
  int num_threads = 2;
  uint32_t seed = 0;                      // fixed so that training is reproducible
};

/// Trains a sentencepiece model with ids unk=0, bos=1, eos=2, pad=3. Throws grpo::InputError
/// naming the input when it is missing or the trainer rejects the options (e.g. a vocab size
/// larger than the corpus supports).
void train_sentencepiece(const SentencePieceTrainOptions& opt);

}  // namespace grpo::tok
