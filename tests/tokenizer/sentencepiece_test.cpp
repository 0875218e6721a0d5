// sentencepiece: train on a generated corpus, then encode/decode round trips and user symbols.
#include "grpo/tokenizer/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "grpo/util/error.h"

namespace {

namespace stdfs = std::filesystem;

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = stdfs::temp_directory_path() / ("grpo_sp_test_" + std::to_string(::getpid()));
    stdfs::create_directories(dir_);
    // A small corpus with fixed-seed word salad plus R1-style tags.
    std::mt19937 rng(42);
    const char* words[] = {"the", "answer", "is", "we", "compute", "sum", "of", "numbers", "step", "then",
                           "therefore", "x", "equals", "Solve", "for", "café", "数学", "問題", "+", "=", "(", ")"};
    std::ofstream f(dir_ / "corpus.txt");
    for (int line = 0; line < 3000; ++line) {
      int n = 3 + rng() % 12;
      if (line % 5 == 0) f << "<think> ";
      for (int k = 0; k < n; ++k) f << words[rng() % std::size(words)] << (rng() % 7 == 0 ? " " + std::to_string(rng() % 1000) + " " : " ");
      if (line % 5 == 0) f << "</think> <answer> " << rng() % 100 << " </answer>";
      f << "\n";
    }
    f.close();
    grpo::tok::SentencePieceTrainOptions o;
    o.input = (dir_ / "corpus.txt").string();
    o.model_prefix = (dir_ / "sp").string();
    o.vocab_size = 400;
    o.user_defined_symbols = {"<think>", "</think>", "<answer>", "</answer>"};
    grpo::tok::train_sentencepiece(o);
  }
  static void TearDownTestSuite() { stdfs::remove_all(dir_); }
  static stdfs::path dir_;
};
stdfs::path SentencePieceTest::dir_;

TEST_F(SentencePieceTest, RoundTripAndUserSymbols) {
  grpo::tok::SentencePieceTokenizer tok((dir_ / "sp.model").string());
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_EQ(tok.special().unk, 0);
  EXPECT_EQ(tok.special().bos, 1);
  EXPECT_EQ(tok.special().eos, std::vector<int32_t>{2});
  EXPECT_EQ(tok.special().pad, 3);
  EXPECT_TRUE(tok.special().add_bos);
  for (const char* sym : {"<think>", "</think>", "<answer>", "</answer>"}) {
    auto id = tok.find_token(sym);
    ASSERT_TRUE(id.has_value()) << sym;
    EXPECT_FALSE(tok.is_special(*id));
  }
  // Tags written inline become single pieces.
  auto ids = tok.encode("<think>the sum</think><answer>42</answer>");
  EXPECT_EQ(ids.front(), *tok.find_token("<think>"));
  EXPECT_NE(std::find(ids.begin(), ids.end(), *tok.find_token("</answer>")), ids.end());
  // Round trips, including characters never seen in training (byte fallback) and whitespace runs.
  for (std::string s : {"the answer is 42", "Solve for x: (3 + 4) = 7", "<think>step then step</think>",
                        "unseen ünïcödé ✓ 😀 Ωμέγα", "two  spaces and\ttab", "数学 問題 café"}) {
    EXPECT_EQ(tok.decode(tok.encode(s)), s) << s;
  }
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 2}, /*skip_special=*/true), "");
  EXPECT_THROW(tok.decode(std::vector<int32_t>{400}), grpo::InputError);
  EXPECT_FALSE(tok.find_token("no-such-piece-xyz").has_value());
}

TEST_F(SentencePieceTest, BadInputs) {
  EXPECT_THROW(grpo::tok::SentencePieceTokenizer((dir_ / "missing.model").string()), grpo::InputError);
  std::ofstream(dir_ / "bad.model") << "this is not a protobuf";
  try {
    grpo::tok::SentencePieceTokenizer t((dir_ / "bad.model").string());
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model"), std::string::npos) << e.what();
  }
  grpo::tok::SentencePieceTrainOptions o;
  o.input = (dir_ / "nope.txt").string();
  o.model_prefix = (dir_ / "x").string();
  EXPECT_THROW(grpo::tok::train_sentencepiece(o), grpo::InputError);
}

}  // namespace
