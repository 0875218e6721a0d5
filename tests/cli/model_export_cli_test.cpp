// A trained policy leaves grpo: `grpo train` writes final/, `grpo model convert final/ HF` exports it
// with its tokenizer, and `grpo generate` samples from final/ directly. The exported tensors are
// compared, by the safetensors Python package (an independent reader), with the ones training
// wrote: a convert that re-initialised the model instead of loading final/ would not match (one
// SFT step at a high learning rate moves the weights away from their initialisation).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::run_cmd;
using grpo::testing::run_grpo;

TEST(CliModelExport, TrainedFinalDirConvertsToHfAndGenerates) {
  const sfs::path d = sfs::temp_directory_path() / ("grpo_export_cli_" + std::to_string(::getpid()));
  sfs::remove_all(d);
  sfs::create_directories(d);
  {
    std::ofstream data(d / "train.jsonl");
    for (int a = 1; a <= 16; ++a)
      data << "{\"prompt\": \"What is " << a << " plus 2?\", \"answer\": \"" << a + 2 << "\"}\n";
  }
  auto tok = run_grpo("tokenizer train --input " + (d / "train.jsonl").string() + " --vocab-size 48 --no-byte-fallback --out " +
                      (d / "tok").string());
  ASSERT_EQ(tok.rc, 0) << tok.err;
  std::ofstream(d / "run.yaml") << "data: {train_file: " << (d / "train.jsonl").string() << "}\n"
                                << "tokenizer: {path: " << (d / "tok.model").string() << ", chat_template: plain}\n"
                                << "model: {hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, "
                                   "num_attention_heads: 2, num_key_value_heads: 1}\n"
                                << "rollout: {max_completion_length: 8}\n"
                                << "reward: {functions: [{name: math_answer, weight: 1.0}]}\n"
                                << "grpo: {num_generations: 4}\n"
                                << "optimizer: {learning_rate: 0.05}\n"
                                << "trainer: {output_dir: " << (d / "run").string()
                                << ", per_device_train_batch_size: 8, max_steps: 1}\n"
                                // One SFT step: a cross-entropy gradient moves every weight (a GRPO
                                // step with equal rewards would leave them at their initialisation).
                                << "stages: [{kind: sft, max_steps: 1, response_field: answer}]\n";
  auto train = run_grpo("train " + (d / "run.yaml").string());
  ASSERT_EQ(train.rc, 0) << train.err;
  const sfs::path final_dir = d / "run" / "final", hf = d / "hf";
  ASSERT_TRUE(sfs::exists(final_dir / "model.safetensors")) << train.out;

  auto conv = run_grpo("model convert " + final_dir.string() + " " + hf.string());
  ASSERT_EQ(conv.rc, 0) << conv.err;
  EXPECT_TRUE(sfs::exists(hf / "config.json"));
  EXPECT_TRUE(sfs::exists(hf / "tokenizer.model")) << conv.out;

  // Every trained tensor is in the export under its Hugging Face name, bit for bit.
  const std::string py = std::string(GRPO_PYTHON) + " -c \"import numpy as np, sys\n"
                         "from safetensors.numpy import load_file\n"
                         "a = load_file(sys.argv[1]); b = load_file(sys.argv[2]); bad = []\n"
                         "for k, v in a.items():\n"
                         "    hk = k if k in b else 'model.' + k\n"
                         "    if hk not in b or b[hk].shape != v.shape or not np.array_equal(b[hk], v): bad.append(k)\n"
                         "print(len(a), 'tensors', 'mismatch:', bad)\n"
                         "sys.exit(1 if bad or not a else 0)\" " +
                         (final_dir / "model.safetensors").string() + " " + (hf / "model.safetensors").string();
  auto cmp = run_cmd(py);
  EXPECT_EQ(cmp.rc, 0) << cmp.out << cmp.err;

  auto info = run_grpo("model info " + final_dir.string());
  EXPECT_EQ(info.rc, 0) << info.err;
  EXPECT_NE(info.out.find("architecture: LlamaForCausalLM"), std::string::npos) << info.out;

  std::ofstream(d / "prompts.jsonl") << "{\"prompt\": \"What is 3 plus 2?\"}\n";
  auto gen = run_grpo("generate " + (d / "run.yaml").string() + " model.path=" + final_dir.string() + " --prompts " +
                      (d / "prompts.jsonl").string() + " --out " + (d / "gen.jsonl").string() + " -n 2");
  ASSERT_EQ(gen.rc, 0) << gen.err;
  std::ifstream g(d / "gen.jsonl");
  int lines = 0;
  for (std::string l; std::getline(g, l);) lines += !l.empty();
  EXPECT_EQ(lines, 2);
  sfs::remove_all(d);
}

}  // namespace
