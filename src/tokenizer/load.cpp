#include <filesystem>

#include "grpo/tokenizer/bpe_tokenizer.h"
#include "grpo/tokenizer/sentencepiece_tokenizer.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"

namespace grpo::tok {

bool Tokenizer::is_eos(int32_t id) const {
  for (int32_t e : special_.eos)
    if (e == id) return true;
  return false;
}

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const config::TokenizerConfig& cfg, const std::string& model_path) {
  namespace stdfs = std::filesystem;
  std::string path = cfg.path.empty() ? model_path : cfg.path;
  GRPO_REQUIRE(!path.empty(), "tokenizer.path is empty and there is no model.path to take the tokenizer from");
  GRPO_REQUIRE(stdfs::exists(path), path, ": tokenizer file not found");
  if (stdfs::is_directory(path)) {
    if (stdfs::exists(stdfs::path(path) / "tokenizer.json") && cfg.type != config::TokenizerType::SENTENCEPIECE)
      path = (stdfs::path(path) / "tokenizer.json").string();
    else if (stdfs::exists(stdfs::path(path) / "tokenizer.model"))
      path = (stdfs::path(path) / "tokenizer.model").string();
    else
      throw InputError(str(path, ": directory has neither tokenizer.json nor tokenizer.model"));
  }
  auto type = cfg.type;
  if (type == config::TokenizerType::AUTO) {
    if (ends_with(path, ".gguf")) type = config::TokenizerType::GGUF;
    else if (ends_with(path, ".json")) type = config::TokenizerType::BPE;
    else if (ends_with(path, ".model")) type = config::TokenizerType::SENTENCEPIECE;
    else
      throw InputError(str(path, ": cannot tell the tokenizer kind from the file name (expected .gguf, .json or .model); "
                                 "set tokenizer.type"));
  }
  switch (type) {
    case config::TokenizerType::GGUF: return BpeTokenizer::from_gguf(path);
    case config::TokenizerType::BPE: return BpeTokenizer::from_tokenizer_json(path);
    case config::TokenizerType::SENTENCEPIECE: return std::make_unique<SentencePieceTokenizer>(path);
    case config::TokenizerType::AUTO: break;
  }
  throw InternalError("unreachable tokenizer type");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  config::TokenizerConfig cfg;
  cfg.path = path;
  return load_tokenizer(cfg);
}

}  // namespace grpo::tok
