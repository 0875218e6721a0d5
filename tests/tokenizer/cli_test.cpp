// `grpo tokenizer encode|decode|info|train` end to end through the built executable.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "grpo/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace {

struct Run {
  int code;
  std::string out;
};

Run run(const std::string& args) {
  std::string cmd = std::string(GRPO_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

const std::string kQwen = grpo::test::kTokData + "qwen2_style/tokenizer.json";

TEST(TokenizerCli, EncodeDecodeMatchLibrary) {
  auto tok = grpo::tok::load_tokenizer(kQwen);
  auto ids = tok->encode("Hello, world! 123 <|im_end|>");
  std::string want;
  for (size_t i = 0; i < ids.size(); ++i) want += (i ? " " : "") + std::to_string(ids[i]);
  auto r = run("tokenizer encode -t " + kQwen + " --text 'Hello, world! 123 <|im_end|>'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, want + "\n");
  r = run("tokenizer decode -t " + kQwen + " " + want);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "Hello, world! 123 <|im_end|>\n");
  r = run("tokenizer info -t " + kQwen);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("eos: " + std::to_string(*tok->find_token("<|im_end|>"))), std::string::npos) << r.out;
}

TEST(TokenizerCli, BadInputExitsTwoWithOneLine) {
  auto r = run("tokenizer encode -t /no/such/tokenizer.json --text hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "grpo: error: /no/such/tokenizer.json: tokenizer file not found\n");
  r = run("tokenizer decode -t " + kQwen + " 99999999");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
}

TEST(TokenizerCli, TrainWithUserSymbols) {
  namespace stdfs = std::filesystem;
  auto dir = stdfs::temp_directory_path() / ("grpo_tok_cli_" + std::to_string(::getpid()));
  stdfs::create_directories(dir);
  {
    std::ofstream f(dir / "corpus.txt");
    for (int i = 0; i < 2000; ++i)
      f << "<think> step " << i % 97 << " then add " << (i * 7) % 13 << " </think> <answer> " << i % 10
        << " </answer> the result follows\n";
  }
  auto r = run("tokenizer train --input " + (dir / "corpus.txt").string() + " --vocab-size 320 --out " +
               (dir / "m").string() + " --user-symbols '<think>,</think>,<answer>,</answer>'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("320 pieces"), std::string::npos) << r.out;
  auto tok = grpo::tok::load_tokenizer((dir / "m.model").string());
  auto ids = tok->encode("<think>x</think>");
  EXPECT_EQ(ids.front(), *tok->find_token("<think>"));
  EXPECT_EQ(ids.back(), *tok->find_token("</think>"));
  EXPECT_EQ(tok->decode(ids), "<think>x</think>");
  r = run("tokenizer train --input " + (dir / "missing.txt").string() + " --vocab-size 100 --out " + (dir / "m2").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("missing.txt: training corpus not found"), std::string::npos) << r.out;
  stdfs::remove_all(dir);
}

}  // namespace
