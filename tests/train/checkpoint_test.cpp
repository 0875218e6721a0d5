// Checkpoints: exact round trip, corruption detection, crash leftovers ignored, keep-last-N.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "grpo/train/checkpoint.h"
#include "grpo/util/error.h"

namespace {

namespace sfs = std::filesystem;

// Not sfs::remove_all: libtorch.so exports an older libstdc++'s copy of it, which the dynamic linker
// binds in this process and which crashes (see remove_quietly in src/train/checkpoint.cpp).
void remove_tree(const sfs::path& d) { (void)std::system(("rm -rf '" + d.string() + "'").c_str()); }
using grpo::train::NamedTensors;
using grpo::train::TrainState;

std::string fresh_dir(const std::string& name) {
  auto d = sfs::temp_directory_path() / ("grpo_ckpt_test_" + name + "_" + std::to_string(::getpid()));
  remove_tree(d);
  sfs::create_directories(d);
  return d.string();
}

struct Model {
  torch::Tensor w = torch::randn({4, 3}).requires_grad_(true);
  torch::Tensor b = torch::randn({3}).to(torch::kBFloat16).requires_grad_(false);
  NamedTensors named() const { return {{"layer.weight", w}, {"layer.bias_bf16", b}}; }
};

// One AdamW step on a fixed loss so the optimizer has non-trivial state (step, exp_avg, exp_avg_sq).
void train_step(Model& m, torch::optim::AdamW& opt) {
  opt.zero_grad();
  (m.w * m.w).sum().backward();
  opt.step();
}

TrainState make_state(int64_t step) {
  TrainState s;
  s.step = step;
  s.stage = "grpo";
  s.data = {2, 17};
  s.scheduler = {{"kind", "cosine"}, {"warmup", 3}, {"total", 100}};
  s.config_yaml = "trainer:\n  seed: 42\n";
  s.metrics_jsonl = "{\"step\":1,\"loss\":0.5}\n";
  s.extra = {{"consecutive_nonfinite", 1}};
  s.rng = {grpo::train::capture_rng_state()};
  return s;
}

bool same(const torch::Tensor& a, const torch::Tensor& b) { return a.dtype() == b.dtype() && torch::equal(a, b); }

TEST(Checkpoint, RoundTripIsExact) {
  torch::manual_seed(0);
  const auto out = fresh_dir("roundtrip");
  Model m;
  torch::optim::AdamW opt({m.w}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  train_step(m, opt);
  auto s = make_state(5);
  const auto path = grpo::train::save_checkpoint(out, s, m.named(), &opt, 3);
  EXPECT_EQ(sfs::path(path).filename(), "checkpoint-00000005");
  EXPECT_EQ(grpo::train::verify_checkpoint(path), "");
  // The RNG continues from the captured state: draws after save must be reproduced after restore.
  const auto draw_after_save = torch::rand({5});

  torch::manual_seed(123);  // a different model and optimizer state
  Model m2;
  torch::optim::AdamW opt2({m2.w}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  auto loaded = grpo::train::load_checkpoint(path, m2.named(), &opt2);
  EXPECT_TRUE(same(m2.w, m.w));
  EXPECT_TRUE(same(m2.b, m.b));  // bf16 stays bf16, bit for bit
  EXPECT_EQ(loaded.state.step, 5);
  EXPECT_EQ(loaded.state.stage, "grpo");
  EXPECT_EQ(loaded.state.data, (grpo::data::LoaderPosition{2, 17}));
  EXPECT_EQ(loaded.state.scheduler, s.scheduler);
  EXPECT_EQ(loaded.state.extra, s.extra);
  EXPECT_EQ(loaded.state.config_yaml, s.config_yaml);
  EXPECT_EQ(loaded.state.metrics_jsonl, s.metrics_jsonl);
  ASSERT_EQ(loaded.state.rng.size(), 1u);
  grpo::train::restore_rng_state(loaded.state.rng[0]);
  EXPECT_TRUE(torch::equal(torch::rand({5}), draw_after_save));
  // Optimizer state restored exactly: the next step gives bit-identical weights.
  train_step(m, opt);
  train_step(m2, opt2);
  EXPECT_TRUE(same(m2.w, m.w));
  // `latest` points at it.
  std::ifstream latest(out + "/checkpoints/latest");
  std::string line;
  std::getline(latest, line);
  EXPECT_EQ(line, "checkpoint-00000005");
}

TEST(Checkpoint, SafetensorsIsReadableByTheReferenceLibrary) {
  // Our writer's output parsed by the `safetensors` package's own (Rust) deserializer; its raw bytes
  // decoded in Python (float32 as is, bf16 as the top half of a float32).
  torch::manual_seed(1);
  const auto out = fresh_dir("pyread");
  Model m;
  auto s = make_state(1);
  const auto path = grpo::train::save_checkpoint(out, s, m.named(), nullptr, 1);
  const std::string script =
      "import sys, struct\n"
      "from safetensors import deserialize\n"
      "t = dict(deserialize(open(sys.argv[1], 'rb').read()))\n"
      "w, b = t['layer.weight'], t['layer.bias_bf16']\n"
      "print(sorted(t), w['dtype'], w['shape'], b['dtype'], b['shape'])\n"
      "print(repr(sum(struct.unpack('<12f', bytes(w['data'])))))\n"
      "print(repr(sum(struct.unpack('<3f', b''.join(b'\\0\\0' + bytes(b['data'][i:i + 2]) for i in (0, 2, 4))))))\n";
  std::ofstream(out + "/read.py") << script;
  const std::string cmd = std::string(GRPO_PYTHON) + " " + out + "/read.py " + path + "/model.safetensors > " + out + "/py.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(out + "/py.txt");
  std::string header, wsum, bsum;
  std::getline(f, header);
  std::getline(f, wsum);
  std::getline(f, bsum);
  EXPECT_EQ(header, "['layer.bias_bf16', 'layer.weight'] F32 [4, 3] BF16 [3]");
  // Python sums the float32 values in float64, as does the reference below: equal to 1e-12.
  EXPECT_NEAR(std::stod(wsum), m.w.to(torch::kFloat64).sum().item<double>(), 1e-12);
  EXPECT_NEAR(std::stod(bsum), m.b.to(torch::kFloat64).sum().item<double>(), 1e-12);
}

TEST(Checkpoint, TruncatedFileIsDetectedAndAutoResumeFallsBack) {
  torch::manual_seed(2);
  const auto out = fresh_dir("truncated");
  Model m;
  grpo::train::save_checkpoint(out, make_state(10), m.named(), nullptr, 5);
  const auto newest = grpo::train::save_checkpoint(out, make_state(20), m.named(), nullptr, 5);
  // Truncate the weights by hand, as a full disk or a killed copy would.
  const auto weights = newest + "/model.safetensors";
  sfs::resize_file(weights, sfs::file_size(weights) - 7);
  const auto problem = grpo::train::verify_checkpoint(newest);
  EXPECT_NE(problem.find("model.safetensors has"), std::string::npos) << problem;
  // auto: skips the corrupt newest with a warning and resumes from step 10.
  auto r = grpo::train::find_resume("auto", out);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(sfs::path(*r).filename(), "checkpoint-00000010");
  // An explicit path to the corrupt one is an error naming it.
  try {
    grpo::train::find_resume(newest, out);
    FAIL();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(newest), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated or modified"), std::string::npos) << e.what();
  }
  Model m2;
  EXPECT_THROW(grpo::train::load_checkpoint(newest, m2.named(), nullptr), grpo::InputError);
}

TEST(Checkpoint, FlippedByteFailsChecksum) {
  torch::manual_seed(3);
  const auto out = fresh_dir("flipped");
  Model m;
  const auto p = grpo::train::save_checkpoint(out, make_state(1), m.named(), nullptr, 1);
  {
    std::fstream f(p + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  EXPECT_NE(grpo::train::verify_checkpoint(p).find("SHA-256"), std::string::npos);
  // A damaged manifest is a problem report, not a crash or an exception.
  std::ofstream(p + "/manifest.json") << "{\"files\": {\"state.json\": {\"bytes\": \"x\"}}";
  EXPECT_NE(grpo::train::verify_checkpoint(p).find("unreadable manifest.json"), std::string::npos);
  std::ofstream(p + "/manifest.json") << "{\"files\": {\"model.safetensors\": 3, \"state.json\": {}}}";
  EXPECT_NE(grpo::train::verify_checkpoint(p).find("needs unsigned 'bytes'"), std::string::npos)
      << grpo::train::verify_checkpoint(p);
}

TEST(Checkpoint, CrashLeftoversAreIgnored) {
  torch::manual_seed(4);
  const auto out = fresh_dir("crash");
  Model m;
  grpo::train::save_checkpoint(out, make_state(10), m.named(), nullptr, 5);
  // A crash mid-save of step 20 leaves a .tmp directory with partial content, and a crash after the
  // rename but before the marker cannot happen (the marker is written inside .tmp), but a checkpoint
  // directory without its marker (e.g. copied by hand) must not be used either.
  const auto root = out + "/checkpoints";
  sfs::create_directories(root + "/.tmp-checkpoint-00000020-999");
  std::ofstream(root + "/.tmp-checkpoint-00000020-999/model.safetensors") << "partial";
  sfs::create_directories(root + "/checkpoint-00000030");
  std::ofstream(root + "/checkpoint-00000030/model.safetensors") << "partial";
  auto r = grpo::train::find_resume("auto", out);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(sfs::path(*r).filename(), "checkpoint-00000010");
  EXPECT_EQ(grpo::train::list_checkpoints(out).size(), 1u);
  // The next save cleans up the .tmp leftover.
  grpo::train::save_checkpoint(out, make_state(40), m.named(), nullptr, 5);
  EXPECT_FALSE(sfs::exists(root + "/.tmp-checkpoint-00000020-999"));
  EXPECT_EQ(sfs::path(*grpo::train::find_resume("auto", out)).filename(), "checkpoint-00000040");
}

TEST(Checkpoint, SaveHookRunsAfterTheWeightsAndBeforeTheMarker) {
  torch::manual_seed(7);
  const auto out = fresh_dir("hook");
  Model m;
  grpo::train::save_checkpoint(out, make_state(1), m.named(), nullptr, 5);
  // The hook sees step 2's save in progress: weights written in the .tmp directory, no manifest or
  // marker yet, nothing under the final name. Then it fails the save, as a crash there would.
  std::vector<int64_t> seen;
  grpo::train::set_save_hook_for_testing([&](int64_t step) {
    seen.push_back(step);
    std::vector<std::string> tmp;
    for (const auto& e : sfs::directory_iterator(out + "/checkpoints"))
      if (e.path().filename().string().rfind(".tmp-checkpoint-00000002", 0) == 0) tmp.push_back(e.path().string());
    ASSERT_EQ(tmp.size(), 1u);
    EXPECT_TRUE(sfs::exists(tmp[0] + "/model.safetensors"));
    EXPECT_FALSE(sfs::exists(tmp[0] + "/manifest.json"));
    EXPECT_FALSE(sfs::exists(tmp[0] + "/COMPLETE"));
    EXPECT_FALSE(sfs::exists(out + "/checkpoints/checkpoint-00000002"));
    throw grpo::InputError("injected");
  });
  EXPECT_THROW(grpo::train::save_checkpoint(out, make_state(2), m.named(), nullptr, 5), grpo::InputError);
  grpo::train::set_save_hook_for_testing(nullptr);
  EXPECT_EQ(seen, std::vector<int64_t>{2});
  // The failed save left the previous checkpoint as the one to resume from, and no .tmp behind.
  EXPECT_EQ(sfs::path(*grpo::train::find_resume("auto", out)).filename(), "checkpoint-00000001");
  for (const auto& e : sfs::directory_iterator(out + "/checkpoints"))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  // Without a hook the same save completes.
  grpo::train::save_checkpoint(out, make_state(2), m.named(), nullptr, 5);
  EXPECT_EQ(sfs::path(*grpo::train::find_resume("auto", out)).filename(), "checkpoint-00000002");
}

TEST(Checkpoint, KeepsLastNAndReplacesSameStep) {
  torch::manual_seed(5);
  const auto out = fresh_dir("keep");
  Model m;
  for (int64_t step : {1, 2, 3, 4, 5}) grpo::train::save_checkpoint(out, make_state(step), m.named(), nullptr, 2);
  auto all = grpo::train::list_checkpoints(out);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 4);
  EXPECT_EQ(all[1].first, 5);
  // Saving step 5 again (e.g. after a resume) replaces it.
  auto s = make_state(5);
  s.extra = {{"again", true}};
  grpo::train::save_checkpoint(out, s, m.named(), nullptr, 2);
  Model m2;
  auto loaded = grpo::train::load_checkpoint(all[1].second, m2.named(), nullptr);
  EXPECT_EQ(loaded.state.extra, s.extra);
  EXPECT_EQ(grpo::train::list_checkpoints(out).size(), 2u);
}

TEST(Checkpoint, ResumeModesAndModelMismatch) {
  const auto out = fresh_dir("modes");
  EXPECT_FALSE(grpo::train::find_resume("", out).has_value());
  EXPECT_FALSE(grpo::train::find_resume("auto", out).has_value());  // nothing saved yet
  EXPECT_THROW(grpo::train::find_resume(out + "/nope", out), grpo::InputError);
  torch::manual_seed(6);
  Model m;
  const auto p = grpo::train::save_checkpoint(out, make_state(1), m.named(), nullptr, 1);
  // A model with a differently shaped weight, or without one of the saved weights, is refused.
  NamedTensors wrong = {{"layer.weight", torch::zeros({3, 4})}, {"layer.bias_bf16", m.b.clone()}};
  EXPECT_THROW(grpo::train::load_checkpoint(p, wrong, nullptr), grpo::InputError);
  NamedTensors fewer = {{"layer.weight", torch::zeros({4, 3})}};
  EXPECT_THROW(grpo::train::load_checkpoint(p, fewer, nullptr), grpo::InputError);
  NamedTensors more = {{"layer.weight", torch::zeros({4, 3})}, {"layer.bias_bf16", m.b.clone()}, {"x", torch::zeros({1})}};
  EXPECT_THROW(grpo::train::load_checkpoint(p, more, nullptr), grpo::InputError);
}

TEST(Checkpoint, Sha256KnownAnswer) {
  // FIPS 180-2 appendix B.1: SHA-256("abc").
  const auto out = fresh_dir("sha");
  std::ofstream(out + "/abc") << "abc";
  EXPECT_EQ(grpo::train::sha256_file(out + "/abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
