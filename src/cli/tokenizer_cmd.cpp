// `grpo tokenizer encode|decode|info|train`: inspect a tokenizer from the command line and train
// sentencepiece models for models trained from scratch.
#include <iostream>
#include <iterator>

#include "grpo/cli/commands.h"
#include "grpo/tokenizer/sentencepiece_tokenizer.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::cli {
namespace {

struct TokArgs {
  std::string path, type = "auto", text;
  bool pieces = false, skip_special = false;
  std::vector<int32_t> ids;
};

std::unique_ptr<tok::Tokenizer> open(const TokArgs& a) {
  config::TokenizerConfig cfg;
  cfg.path = a.path;
  auto t = config::enum_from_name<config::TokenizerType>(a.type);
  GRPO_REQUIRE(t.has_value(), "--type '", a.type, "' is not one of auto, sentencepiece, bpe, gguf");
  cfg.type = *t;
  return tok::load_tokenizer(cfg);
}

std::string read_stdin() { return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()}; }

}  // namespace

void register_tokenizer_commands(CLI::App& app) {
  auto* t = app.add_subcommand("tokenizer", "Encode, decode and inspect tokenizers; train sentencepiece models");
  t->require_subcommand(1);

  static TokArgs enc, dec, info;
  auto* e = t->add_subcommand("encode", "Print the token ids of --text (or of stdin), space-separated");
  e->add_option("-t,--tokenizer", enc.path, "tokenizer.json, sentencepiece .model, .gguf or HF directory")->required();
  e->add_option("--type", enc.type, "auto | bpe | sentencepiece | gguf");
  e->add_option("--text", enc.text, "text to encode; stdin when absent");
  e->add_flag("--pieces", enc.pieces, "print id:piece pairs, one per line");
  e->callback([] {
    auto tk = open(enc);
    std::string text = enc.text.empty() ? read_stdin() : enc.text;
    auto ids = tk->encode(text);
    if (enc.pieces) {
      for (auto id : ids) std::cout << id << "\t" << tk->piece(id) << "\n";
    } else {
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    }
  });

  auto* d = t->add_subcommand("decode", "Print the text of the given token ids");
  d->add_option("-t,--tokenizer", dec.path, "tokenizer.json, sentencepiece .model, .gguf or HF directory")->required();
  d->add_option("--type", dec.type, "auto | bpe | sentencepiece | gguf");
  d->add_option("ids", dec.ids, "token ids")->required();
  d->add_flag("--skip-special", dec.skip_special, "drop special/control tokens");
  d->callback([] {
    auto tk = open(dec);
    std::cout << tk->decode(dec.ids, dec.skip_special) << "\n";
  });

  auto* i = t->add_subcommand("info", "Print the tokenizer kind, size and special token ids");
  i->add_option("-t,--tokenizer", info.path, "tokenizer.json, sentencepiece .model, .gguf or HF directory")->required();
  i->add_option("--type", info.type, "auto | bpe | sentencepiece | gguf");
  i->callback([] {
    auto tk = open(info);
    const auto& s = tk->special();
    auto show = [&](const std::optional<int32_t>& id) { return id ? str(*id, " ", tk->piece(*id)) : std::string("none"); };
    std::cout << tk->describe() << "\n"
              << "bos: " << show(s.bos) << (s.add_bos ? " (added to prompts)" : "") << "\n"
              << "eos:";
    for (auto id : s.eos) std::cout << " " << id << " " << tk->piece(id);
    std::cout << "\npad: " << show(s.pad) << "\nunk: " << show(s.unk) << "\n"
              << "chat template: " << (tk->chat_template_source().empty() ? "none" : "present") << "\n";
  });

  static tok::SentencePieceTrainOptions tr;
  static std::string user_symbols;
  static bool no_byte_fallback = false;
  auto* r = t->add_subcommand("train", "Train a sentencepiece model (writes <out>.model and <out>.vocab)");
  r->add_option("--input", tr.input, "training text, one sentence or document per line")->required();
  r->add_option("--vocab-size", tr.vocab_size, "vocabulary size")->required();
  r->add_option("--out", tr.model_prefix, "output prefix")->required();
  r->add_option("--model-type", tr.model_type, "bpe | unigram | char | word")->check(CLI::IsMember({"bpe", "unigram", "char", "word"}));
  r->add_option("--user-symbols", user_symbols, "comma-separated pieces kept whole, e.g. '<think>,</think>,<answer>,</answer>'");
  r->add_flag("--no-byte-fallback", no_byte_fallback, "map unknown characters to <unk> instead of byte pieces");
  r->add_option("--input-sentence-size", tr.input_sentence_size, "sample this many lines (0 = all)");
  r->add_option("--threads", tr.num_threads, "trainer threads");
  r->callback([] {
    if (!user_symbols.empty())
      for (auto& s : split(user_symbols, ','))
        if (!trim(s).empty()) tr.user_defined_symbols.emplace_back(trim(s));
    tr.byte_fallback = !no_byte_fallback;
    tok::train_sentencepiece(tr);
    tok::SentencePieceTokenizer check(tr.model_prefix + ".model");
    std::cout << "wrote " << tr.model_prefix << ".model (" << check.vocab_size() << " pieces)\n";
  });
}

}  // namespace grpo::cli
