// Loading datasets: JSONL and JSON arrays, bad records reported with file:line or skipped and counted.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "grpo/data/dataset.h"
#include "grpo/data/escape.h"
#include "grpo/util/error.h"

namespace {

using grpo::config::DataConfig;
using grpo::config::OnBadRecord;
using grpo::data::Dataset;

std::string write_tmp(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("grpo_data_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = (dir / name).string();
  std::ofstream(p) << text;
  return p;
}

std::string error_of(const std::string& path, const DataConfig& cfg) {
  try {
    Dataset::load(path, cfg);
  } catch (const grpo::InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Dataset, LoadsJsonlKeepingWholeRowAndLines) {
  auto p = write_tmp("ok.jsonl",
                     "{\"prompt\": \"1+1?\", \"answer\": \"2\", \"tests\": [\"a\"]}\n"
                     "\n"
                     "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"answer\": 3, \"level\": 5}\n");
  auto ds = Dataset::load(p, DataConfig{});
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].line, 1);
  EXPECT_EQ(ds[1].line, 3);  // the blank line 2 is not a record but still counts as a line
  EXPECT_EQ(ds[0].row["tests"][0], "a");
  EXPECT_EQ(ds[1].row["level"], 5);
  EXPECT_EQ(ds[1].where(), p + ":3");
  EXPECT_EQ(ds.num_skipped(), 0);
}

TEST(Dataset, LoadsJsonArrayWithElementLines) {
  auto p = write_tmp("ok.json",
                     "[\n"
                     "  {\"question\": \"a, [b]\", \"answer\": \"}\"},\n"
                     "  {\"question\": \"c\",\n"
                     "   \"answer\": \"d\"}\n"
                     "]\n");
  DataConfig cfg;
  cfg.prompt_field = "question";
  auto ds = Dataset::load(p, cfg);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].row["question"], "a, [b]");  // commas and brackets inside strings do not split
  EXPECT_EQ(ds[0].line, 2);
  EXPECT_EQ(ds[1].line, 3);
}

TEST(Dataset, BadJsonlRecordNamesFileAndLine) {
  DataConfig cfg;
  auto p = write_tmp("bad1.jsonl", "{\"prompt\": \"a\", \"answer\": 1}\n{\"prompt\": \"b\", \"answer\": \n");
  auto e = error_of(p, cfg);
  EXPECT_NE(e.find(p + ":2: invalid JSON"), std::string::npos) << e;

  p = write_tmp("bad2.jsonl", "{\"prompt\": \"a\", \"answer\": 1}\n\n{\"answer\": 1}\n");
  e = error_of(p, cfg);
  EXPECT_NE(e.find(p + ":3: missing field 'prompt'"), std::string::npos) << e;

  p = write_tmp("bad3.jsonl", "[1, 2]\n");
  e = error_of(p, cfg);
  // A file starting with '[' is read as a JSON array, whose element 1 is not an object.
  EXPECT_NE(e.find(p + ":1: expected a JSON object, got number"), std::string::npos) << e;

  p = write_tmp("bad4.jsonl", "{\"prompt\": 5, \"answer\": 1}\n");
  e = error_of(p, cfg);
  EXPECT_NE(e.find(p + ":1: field 'prompt' must be a string or a list"), std::string::npos) << e;

  p = write_tmp("bad5.jsonl", "{\"prompt\": [{\"role\": \"user\"}], \"answer\": 1}\n");
  e = error_of(p, cfg);
  EXPECT_NE(e.find(p + ":1: field 'prompt'[0] has no 'content'"), std::string::npos) << e;

  p = write_tmp("bad6.jsonl", "{\"prompt\": \"x\"}\n");
  e = error_of(p, cfg);
  EXPECT_NE(e.find(p + ":1: missing field 'answer'"), std::string::npos) << e;
  cfg.answer_field = "";  // no answer needed (e.g. a reward model task)
  EXPECT_EQ(Dataset::load(p, cfg).size(), 1u);
}

// A row with a byte that is not UTF-8: the error names the line and shows the byte as \xff, never
// the raw byte (which a terminal would print as garbage or interpret).
TEST(Dataset, NonUtf8ByteInARowIsEscapedInTheError) {
  auto p = write_tmp("latin1.jsonl", "{\"prompt\": \"ok\", \"answer\": 1}\n{\"prompt\": \"caf\xe9 \xff\", \"answer\": 1}\n");
  auto e = error_of(p, DataConfig{});
  EXPECT_NE(e.find(p + ":2: invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("\\xe9"), std::string::npos) << e;
  for (unsigned char c : e) EXPECT_LT(c, 0x80) << "raw byte in the message: " << e;
}

TEST(Dataset, EscapeForTerminalKeepsUtf8AndEscapesTheRest) {
  using grpo::data::escape_for_terminal;
  const std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // é, €, U+1F600
  EXPECT_EQ(escape_for_terminal(utf8), utf8);
  EXPECT_EQ(escape_for_terminal("a\xff"), "a\\xff");
  EXPECT_EQ(escape_for_terminal("\xc0\xaf"), "\\xc0\\xaf");              // overlong '/'
  EXPECT_EQ(escape_for_terminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");     // a surrogate
  EXPECT_EQ(escape_for_terminal("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(escape_for_terminal("\xe2\x82"), "\\xe2\\x82");                // cut short
  EXPECT_EQ(escape_for_terminal("\x1b[31m\n"), "\\x1b[31m\\x0a");          // control characters
}

TEST(Dataset, BadArrayElementNamesItsLine) {
  auto p = write_tmp("bad.json", "[\n {\"prompt\": \"a\", \"answer\": 1},\n {\"prompt\": \"b\",\n  \"answer\": }\n]\n");
  auto e = error_of(p, DataConfig{});
  EXPECT_NE(e.find(p + ":4: invalid JSON"), std::string::npos) << e;
  p = write_tmp("unclosed.json", "[\n {\"prompt\": \"a\", \"answer\": 1}\n");
  e = error_of(p, DataConfig{});
  EXPECT_NE(e.find("not closed"), std::string::npos) << e;
}

TEST(Dataset, SkipModeCountsBadRecords) {
  auto p = write_tmp("mixed.jsonl",
                     "{\"prompt\": \"a\", \"answer\": 1}\n"
                     "not json\n"
                     "{\"prompt\": \"b\", \"answer\": 2}\n"
                     "{\"answer\": 3}\n"
                     "[1]\n"
                     "{\"prompt\": \"c\", \"answer\": 4}\n");
  DataConfig cfg;
  cfg.on_bad_record = OnBadRecord::SKIP;
  auto ds = Dataset::load(p, cfg);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.num_skipped(), 3);
  ASSERT_EQ(ds.skipped_reasons().size(), 3u);
  EXPECT_EQ(ds.skipped_reasons()[0].rfind(p + ":2:", 0), 0u) << ds.skipped_reasons()[0];
  EXPECT_EQ(ds.skipped_reasons()[1].rfind(p + ":4:", 0), 0u);
  EXPECT_EQ(ds.skipped_reasons()[2].rfind(p + ":5:", 0), 0u);
  EXPECT_EQ(ds[2].row["answer"], 4);
}

TEST(Dataset, EmptyOrAllBadIsAnError) {
  EXPECT_NE(error_of(write_tmp("empty.jsonl", "\n\n"), DataConfig{}).find("empty"), std::string::npos);
  DataConfig cfg;
  cfg.on_bad_record = OnBadRecord::SKIP;
  EXPECT_NE(error_of(write_tmp("allbad.jsonl", "x\ny\n"), cfg).find("no usable record (2 skipped)"),
            std::string::npos);
  EXPECT_NE(error_of("/nonexistent/file.jsonl", DataConfig{}).find("/nonexistent/file.jsonl"), std::string::npos);
}

TEST(Dataset, DropLongPromptsCountsDrops) {
  auto p = write_tmp("lens.jsonl",
                     "{\"prompt\": \"aaaa\", \"answer\": 1}\n{\"prompt\": \"aaaaaaaaaa\", \"answer\": 2}\n"
                     "{\"prompt\": \"aaaaa\", \"answer\": 3}\n");
  auto ds = Dataset::load(p, DataConfig{});
  // Length callback: characters of the prompt (stands for "tokens of the rendered prompt").
  auto len = [](const grpo::data::Record& r) { return static_cast<int64_t>(r.row["prompt"].get<std::string>().size()); };
  EXPECT_EQ(ds.drop_long_prompts(len, 5), 1);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[1].row["answer"], 3);
  EXPECT_EQ(ds.num_dropped_long(), 1);
}

}  // namespace
