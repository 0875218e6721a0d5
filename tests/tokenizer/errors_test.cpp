// Bad tokenizer inputs give one clear grpo::InputError naming the file and the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "grpo/tokenizer/bpe_tokenizer.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"
#include "test_paths.h"

namespace {

namespace stdfs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const grpo::InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

class TokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() / ("grpo_tok_err_" + std::to_string(::getpid()));
    stdfs::create_directories(dir_);
  }
  void TearDown() override { stdfs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  stdfs::path dir_;
};

#define EXPECT_ERROR_HAS(call, ...)                                                 \
  do {                                                                              \
    std::string msg_ = error_of([&] { call; });                                     \
    for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__}) \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "message: " << msg_ << "\nmissing: " << part_; \
  } while (0)

TEST_F(TokenizerErrors, MissingFiles) {
  auto missing = (dir_ / "nope.json").string();
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(missing), missing, "not found");
  EXPECT_ERROR_HAS(grpo::tok::BpeTokenizer::from_tokenizer_json(missing), missing);
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer((dir_ / "nope.gguf").string()), "nope.gguf", "not found");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(dir_.string()), "neither tokenizer.json nor tokenizer.model");
  auto odd = write("vocab.txt", "x");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(odd), odd, "set tokenizer.type");
}

TEST_F(TokenizerErrors, MalformedTokenizerJson) {
  auto p = write("a.json", "{\"model\": {\"type\": \"BPE\", ");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "malformed JSON");
  p = write("b.json", "[1, 2]");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "expected a JSON object");
  p = write("c.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "model.type is 'WordPiece'");
  p = write("d.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]},
                         "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "merge #0 'a c'", "right part");
  p = write("e.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                         "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "unsupported Split regex");
  p = write("f.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "only byte-level BPE");
  p = write("g.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []},
                         "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "id 0 is used by both");
  p = write("h.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true},
                         "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "byte_fallback");
  p = write("i.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]},
                         "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "model.merges[0]");
}

TEST_F(TokenizerErrors, GgufWithoutTokenizerMetadata) {
  // A valid GGUF (written by gguf-py for the reader's tests) that carries no tokenizer.
  std::string p = std::string(GRPO_SOURCE_DIR) + "/tests/util/data/gguf_small.gguf";
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(p), p, "no tokenizer metadata");
  auto bad = write("bad.gguf", "not a gguf file at all");
  EXPECT_ERROR_HAS(grpo::tok::load_tokenizer(bad), bad, "not a GGUF file");
}

TEST_F(TokenizerErrors, OutOfRangeIds) {
  auto tok = grpo::tok::load_tokenizer(grpo::test::kTokData + "qwen2_style/tokenizer.json");
  EXPECT_ERROR_HAS(tok->decode(std::vector<int32_t>{-1}), "token id -1 is out of range");
  EXPECT_ERROR_HAS(tok->decode(std::vector<int32_t>{tok->vocab_size()}), "out of range");
  EXPECT_ERROR_HAS(tok->piece(1 << 30), "out of range");
  // Invalid UTF-8 input is encoded byte by byte and decodes to U+FFFD, never a crash.
  auto ids = tok->encode("a\xff\xfe" "b");
  EXPECT_EQ(tok->decode(ids), "a\xef\xbf\xbd\xef\xbf\xbd" "b");
}

}  // namespace
