// Incremental detokenisation and stop-string matching, against texts worked out by hand.
#include <gtest/gtest.h>

#include "fake_tokenizer.h"
#include "grpo/rollout/incremental_decoder.h"
#include "grpo/rollout/stop_matcher.h"
#include "grpo/util/error.h"

using namespace grpo::rollout;
using grpo::rollout::testing::FakeTokenizer;
using grpo::rollout::testing::SpaceTokenizer;

TEST(IncrementalDecoder, WaitsForTheLastByteOfASplitCharacter) {
  FakeTokenizer tok;
  IncrementalDecoder dec(tok);
  const std::string s = "h\xC3\xA9!\xE2\x82\xAC";  // "hé!€": é is 2 bytes, € is 3
  std::vector<std::string> deltas;
  for (unsigned char c : s) deltas.push_back(dec.push(c));
  EXPECT_EQ(deltas, (std::vector<std::string>{"h", "", "\xC3\xA9", "!", "", "", "\xE2\x82\xAC"}));
  EXPECT_EQ(dec.text(), s);
  ASSERT_EQ(dec.emitted_tokens(), 7u);
  // Both bytes of é end where é ends; all three of € where € ends.
  EXPECT_EQ(std::vector<int64_t>({dec.token_end(0), dec.token_end(1), dec.token_end(2), dec.token_end(3),
                                  dec.token_end(4), dec.token_end(5), dec.token_end(6)}),
            (std::vector<int64_t>{1, 3, 3, 4, 7, 7, 7}));
}

TEST(IncrementalDecoder, InvalidBytesAreEmittedAfterABoundedWait) {
  FakeTokenizer tok;
  IncrementalDecoder dec(tok);
  for (int i = 0; i < 20; ++i) dec.push(0xFF);  // never valid UTF-8
  dec.push('a');
  // Every 0xFF became U+FFFD; nothing was lost or duplicated.
  std::string expect;
  for (int i = 0; i < 20; ++i) expect += "\xEF\xBF\xBD";
  EXPECT_EQ(dec.text(), expect + "a");
}

TEST(IncrementalDecoder, NonConcatenativeDecoderKeepsInnerSpaces) {
  SpaceTokenizer tok;  // decode({1}) = "w1", decode({1, 2}) = "w1 w2"
  IncrementalDecoder dec(tok);
  EXPECT_EQ(dec.push(1), "w1");
  EXPECT_EQ(dec.push(2), " w2");
  EXPECT_EQ(dec.push(33), " w33");
  EXPECT_EQ(dec.text(), "w1 w2 w33");
}

TEST(IncrementalDecoder, SpecialTokensAreSkipped) {
  FakeTokenizer tok;
  IncrementalDecoder dec(tok);
  dec.push('a');
  dec.push(257);
  dec.push('b');
  EXPECT_EQ(dec.text(), "ab");
  EXPECT_THROW(dec.push(260), grpo::InputError);
}

TEST(StopMatcher, FindsAcrossChunkBoundariesAndReportsEarliest) {
  StopMatcher m({"</answer>", "\n\n"});
  std::string text = "x = 4 </an";
  EXPECT_EQ(m.find(text, 0), -1);
  text += "swer> more\n\nstuff";
  EXPECT_EQ(m.find(text, 10), 6);  // "</answer>" starts at byte 6, before "\n\n"
  StopMatcher single({"ab"});
  EXPECT_EQ(single.find("xxa", 0), -1);
  EXPECT_EQ(single.find("xxab", 3), 2);  // the "a" was old, the "b" new
  EXPECT_THROW(StopMatcher({"ok", ""}), grpo::InputError);
}
