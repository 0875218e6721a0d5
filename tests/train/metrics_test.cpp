// metrics.jsonl, samples.jsonl and TensorBoard event files (read back by an independent Python
// parser, tests/train/read_tfevents.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "grpo/train/metrics.h"
#include "grpo/train/step_metrics.h"
#include "grpo/train/tensorboard.h"
#include "grpo/util/error.h"

namespace {

namespace sfs = std::filesystem;

// Not sfs::remove_all: libtorch.so exports an older libstdc++'s copy of it, which the dynamic linker
// binds in this process and which crashes (see remove_quietly in src/train/checkpoint.cpp).
void remove_tree(const sfs::path& d) { (void)std::system(("rm -rf '" + d.string() + "'").c_str()); }

std::string fresh_dir(const std::string& name) {
  auto d = sfs::temp_directory_path() / ("grpo_metrics_test_" + name + "_" + std::to_string(::getpid()));
  remove_tree(d);
  return d.string();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

TEST(TensorBoard, Crc32cKnownAnswers) {
  // RFC 3720 B.4 check value, and 32 zero bytes (RFC 3720 B.4 test vector 0x8A9136AA).
  EXPECT_EQ(grpo::train::crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(grpo::train::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(TensorBoard, EventsReadBackByIndependentParser) {
  const auto dir = fresh_dir("tb");
  std::string path;
  {
    grpo::train::TensorBoardWriter w(dir);
    w.add_scalars(1, {{"loss", 0.25}, {"reward/mean", -1.5}});
    w.add_scalars(2, {{"loss", 0.125}});
    w.add_scalars(300000, {{"lr", 1e-6}});
    w.flush();
    path = w.path();
  }
  EXPECT_EQ(sfs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::string out = dir + "/read.json";
  const std::string cmd = std::string(GRPO_PYTHON) + " " + GRPO_SOURCE_DIR + "/tests/train/read_tfevents.py " + path +
                          " > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(out);
  auto ev = nlohmann::json::parse(f);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]["file_version"], "brain.Event:2");
  EXPECT_EQ(ev[1]["step"], 1);
  EXPECT_EQ(ev[1]["scalars"]["loss"], 0.25);  // exact in float32
  EXPECT_EQ(ev[1]["scalars"]["reward/mean"], -1.5);
  EXPECT_EQ(ev[2]["step"], 2);
  EXPECT_EQ(ev[3]["step"], 300000);  // multi-byte varint
  EXPECT_NEAR(ev[3]["scalars"]["lr"].get<double>(), 1e-6, 1e-13);  // float32 rounding of 1e-6
  EXPECT_GT(ev[1]["wall_time"].get<double>(), 1.7e9);
  // A byte flipped in the last record is caught by the reader's CRC check.
  {
    std::fstream g(path, std::ios::in | std::ios::out | std::ios::binary);
    g.seekp(-6, std::ios::end);
    g.put('\x55');
  }
  EXPECT_NE(std::system((cmd + " 2>/dev/null").c_str()), 0);
}

TEST(Metrics, JsonlLinesSamplesAndResumeTruncation) {
  const auto dir = fresh_dir("jsonl");
  std::string saved;
  {
    grpo::train::MetricsLogger log(dir, {"jsonl", "tensorboard"});
    log.log(1, {{"loss", 0.5}, {"reward", 1.0}});
    saved = log.history();  // a checkpoint taken after step 1
    log.log(2, {{"loss", std::nan("")}, {"reward", 2.0}});
    log.log_samples(2, {{{"prompt", "p"}, {"completion", "c"}, {"reward", 1.0}}});
    auto lines = lines_of(log.metrics_path());
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "{\"step\":1,\"loss\":0.5,\"reward\":1.0}");
    EXPECT_EQ(lines[1], "{\"step\":2,\"loss\":null,\"reward\":2.0}");  // JSON has no NaN
    auto samples = lines_of(log.samples_path());
    ASSERT_EQ(samples.size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(samples[0])["step"], 2);
    EXPECT_FALSE(sfs::is_empty(dir + "/tensorboard"));
  }
  // Resuming from the step-1 checkpoint: step 2 is dropped, and the next step appends after step 1.
  grpo::train::MetricsLogger log(dir, {"jsonl"}, saved);
  log.log(2, {{"loss", 0.4}});
  auto lines = lines_of(log.metrics_path());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["loss"], 0.4);
  EXPECT_THROW(grpo::train::MetricsLogger(dir, {"wandb"}), grpo::InputError);
}

TEST(Metrics, AveragerWeightsByCount) {
  grpo::train::StepMetrics a;
  a.add_mean("clip", 1, 10);  // micro-batch 1: 1 of 10 tokens clipped
  a.add_mean("clip", 1, 2);   // micro-batch 2: 1 of 2; the mean is 2 / 12, not the mean of 0.1 and 0.5
  a.add_mean("empty", 0, 0);
  auto m = a.local();
  EXPECT_DOUBLE_EQ(m["clip"], 2.0 / 12.0);
  EXPECT_EQ(m.count("empty"), 0u);
}

}  // namespace
