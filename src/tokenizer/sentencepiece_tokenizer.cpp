#include "grpo/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <unordered_map>

#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::tok {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), path_(path) {
  GRPO_REQUIRE(std::filesystem::is_regular_file(path), path, ": sentencepiece model file not found");
  auto st = sp_->Load(path);
  GRPO_REQUIRE(st.ok(), path, ": not a valid sentencepiece model: ", st.ToString());
  auto opt = [](int id) -> std::optional<int32_t> { return id >= 0 ? std::optional<int32_t>(id) : std::nullopt; };
  special_.bos = opt(sp_->bos_id());
  special_.pad = opt(sp_->pad_id());
  special_.unk = opt(sp_->unk_id());
  if (sp_->eos_id() >= 0) special_.eos.push_back(sp_->eos_id());
  special_.add_bos = special_.bos.has_value();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto st = sp_->Encode(absl::string_view(text.data(), text.size()), &ids);
  if (!st.ok()) throw InputError(str(path_, ": encode failed: ", st.ToString()));
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<int> v;
  v.reserve(ids.size());
  const int32_t n = vocab_size();
  for (int32_t id : ids) {
    GRPO_REQUIRE(id >= 0 && id < n, "decode: token id ", id, " is out of range [0, ", n, ")");
    if (skip_special && is_special(id)) continue;
    v.push_back(id);
  }
  std::string out;
  auto st = sp_->Decode(v, &out);
  if (!st.ok()) throw InputError(str(path_, ": decode failed: ", st.ToString()));
  return out;
}

int32_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::string SentencePieceTokenizer::piece(int32_t id) const {
  GRPO_REQUIRE(id >= 0 && id < vocab_size(), "token id ", id, " is out of range [0, ", vocab_size(), ")");
  return sp_->IdToPiece(id);
}

std::optional<int32_t> SentencePieceTokenizer::find_token(std::string_view piece) const {
  int id = sp_->PieceToId(absl::string_view(piece.data(), piece.size()));
  // PieceToId answers unk_id for unknown pieces; only the unk piece itself maps there truly.
  if (id == sp_->unk_id() && sp_->IdToPiece(id) != piece) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (sp_->IsControl(id) || sp_->IsUnknown(id));
}

std::string SentencePieceTokenizer::describe() const {
  return str("sentencepiece from ", path_, " (", vocab_size(), " pieces)");
}

void train_sentencepiece(const SentencePieceTrainOptions& o) {
  GRPO_REQUIRE(std::filesystem::is_regular_file(o.input), o.input, ": training corpus not found");
  GRPO_REQUIRE(!o.model_prefix.empty(), "tokenizer train: the output prefix is empty");
  GRPO_REQUIRE(o.vocab_size >= 8, "tokenizer train: vocab size ", o.vocab_size, " is too small (at least 8)");
  for (const auto& s : o.user_defined_symbols)
    GRPO_REQUIRE(!s.empty() && s.find(',') == std::string::npos, "tokenizer train: user-defined symbol '", s,
                 "' must be non-empty and contain no comma");
  std::unordered_map<std::string, std::string> args = {
      {"input", o.input},
      {"model_prefix", o.model_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"num_threads", std::to_string(o.num_threads)},
      {"minloglevel", "1"},
      // Keep digits apart and whitespace intact so that numbers and code round-trip exactly.
      {"split_digits", "true"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},  // text is encoded as written: no "▁" invented before the first word
      {"normalization_rule_name", "identity"},
      {"allow_whitespace_only_pieces", "true"},
  };
  if (o.input_sentence_size > 0) {
    args["input_sentence_size"] = std::to_string(o.input_sentence_size);
    args["shuffle_input_sentence"] = "true";
  }
  if (!o.user_defined_symbols.empty()) args["user_defined_symbols"] = join(o.user_defined_symbols, ",");
  sentencepiece::SetRandomGeneratorSeed(o.seed);
  auto st = sentencepiece::SentencePieceTrainer::Train(args);
  if (!st.ok()) {
    // sentencepiece's own advice names trainer flags grpo does not expose; say what to change here.
    std::string msg = st.ToString(), hint;
    if (msg.find("smaller than required_chars") != std::string::npos)
      hint = o.byte_fallback ? " (byte fallback alone needs 256 byte pieces plus the corpus's characters: raise the vocab "
                               "size, or train without byte fallback, `grpo tokenizer train --no-byte-fallback`)"
                             : " (the corpus has more distinct characters than the vocab size: raise it)";
    else if (msg.find("Vocabulary size too high") != std::string::npos)
      hint = " (the corpus is too small for that many pieces: lower the vocab size)";
    throw InputError(str(o.input, ": sentencepiece training failed: ", msg, hint));
  }
}

}  // namespace grpo::tok
