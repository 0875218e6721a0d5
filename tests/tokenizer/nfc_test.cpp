// NFC against Python's unicodedata.normalize("NFC", s) (tests/tokenizer/data/nfc.json, written by
// scripts/make_unicode_tables.py): composition, reordering of marks, singletons, exclusions, Hangul.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "grpo/tokenizer/unicode.h"
#include "grpo/util/fs.h"
#include "test_paths.h"

namespace {

TEST(Nfc, MatchesPythonUnicodedata) {
  auto ref = nlohmann::json::parse(grpo::fs::read_file(grpo::test::kTokData + "nfc.json"));
  ASSERT_GE(ref.size(), 400u);
  size_t changed = 0;
  for (const auto& e : ref) {
    std::string s = e["s"].get<std::string>(), want = e["nfc"].get<std::string>();
    EXPECT_EQ(grpo::tok::nfc(s), want) << nlohmann::json(s).dump();
    changed += s != want;
  }
  EXPECT_GT(changed, 100u);  // the reference really exercises normalisation
}

TEST(Nfc, HandCheckedCases) {
  using grpo::tok::nfc;
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("\u212b"), "\u00c5");             // ANGSTROM SIGN: singleton -> Å
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");  // jamo -> 각
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("bad \xff utf8 e\xcc\x81"), "bad \xff utf8 e\xcc\x81");  // invalid UTF-8 untouched
}

}  // namespace
