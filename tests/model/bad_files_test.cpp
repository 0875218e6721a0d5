// Bad model files give one clear grpo::InputError naming the file and what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "grpo/model/gguf_weights.h"
#include "grpo/model/hf_config.h"
#include "grpo/model/hf_weights.h"
#include "grpo/model/model_loader.h"
#include "test_support.h"

namespace grpo::model {
namespace {

namespace stdfs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

std::string scratch(const std::string& name) {
  auto d = testing::build_dir() + "/bad_files_test/" + name;
  stdfs::remove_all(d);
  stdfs::create_directories(d);
  return d;
}

config::ModelConfig tiny() {
  config::ModelConfig c;
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  return c;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(BadFiles, TruncatedSafetensors) {
  auto d = scratch("truncated");
  Transformer m(spec_from_config(tiny()));
  save_hf(m, d);
  auto bytes = fs::read_file(d + "/model.safetensors");
  write(d + "/model.safetensors", bytes.substr(0, bytes.size() - 100));
  auto msg = error_of([&] { load_hf(d); });
  EXPECT_NE(msg.find(d + "/model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  write(d + "/model.safetensors", bytes.substr(0, 5));
  EXPECT_NE(error_of([&] { load_hf(d); }).find("truncated"), std::string::npos);
  write(d + "/model.safetensors", std::string("\x10\0\0\0\0\0\0\0{not json}      ", 24));
  EXPECT_NE(error_of([&] { load_hf(d); }).find("malformed JSON header"), std::string::npos);
}

TEST(BadFiles, MissingTensorAndWrongShapeNameTheTensorAndShapes) {
  auto d = scratch("shapes");
  Transformer m(spec_from_config(tiny()));
  save_hf(m, d);
  // Claim a wider model than the weights are: every shape check must name both shapes.
  auto cfg = fs::read_file(d + "/config.json");
  auto p = cfg.find("\"intermediate_size\": 16");
  ASSERT_NE(p, std::string::npos);
  cfg.replace(p, 23, "\"intermediate_size\": 24");
  write(d + "/config.json", cfg);
  auto msg = error_of([&] { load_hf(d); });
  EXPECT_NE(msg.find("model.layers.0.mlp."), std::string::npos) << msg;
  EXPECT_NE(msg.find("[16, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[24, 8]"), std::string::npos) << msg;
  // A missing tensor (untied head expected but not stored).
  cfg.replace(cfg.find("\"intermediate_size\": 24"), 23, "\"intermediate_size\": 16");
  auto t = cfg.find("\"tie_word_embeddings\": true");
  ASSERT_NE(t, std::string::npos);
  cfg.replace(t, 27, "\"tie_word_embeddings\": false");
  write(d + "/config.json", cfg);
  msg = error_of([&] { load_hf(d); });
  EXPECT_NE(msg.find("missing tensor 'lm_head.weight'"), std::string::npos) << msg;
}

TEST(BadFiles, WrongConfigJson) {
  auto d = scratch("config");
  write(d + "/config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": \"big\"}");
  auto msg = error_of([&] { load_model(d); });
  EXPECT_NE(msg.find(d + "/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size"), std::string::npos) << msg;
  write(d + "/config.json",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16, \"hidden_size\": \"big\"}");
  msg = error_of([&] { load_model(d); });
  EXPECT_NE(msg.find("'hidden_size' expected an integer"), std::string::npos) << msg;
  write(d + "/config.json", "{\"architectures\": [\"LlamaForCausalLM\"], ");
  EXPECT_NE(error_of([&] { load_model(d); }).find("not valid JSON"), std::string::npos);
  write(d + "/config.json",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 16,"
        "\"num_hidden_layers\": 1, \"num_attention_heads\": 3, \"num_key_value_heads\": 2}");
  msg = error_of([&] { load_model(d); });
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { load_model(d + "/nothing"); }).find("no such file"), std::string::npos);
}

TEST(BadFiles, UnknownArchitecture) {
  auto d = scratch("arch");
  write(d + "/config.json", "{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 16}");
  auto msg = error_of([&] { load_model(d); });
  EXPECT_NE(msg.find("unsupported architecture 'GPT2LMHeadModel'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Qwen3MoeForCausalLM"), std::string::npos) << msg;  // lists what is supported
}

// A minimal GGUF v3 file by hand (gguf.md): one Q5_0 tensor, which we cannot dequantise.
TEST(BadFiles, GgufWithUnsupportedQuantType) {
  auto d = scratch("gguf");
  std::string b;
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  auto s = [&](const std::string& x) { u64(x.size()); b += x; };
  b += "GGUF";
  u32(3);
  u64(1);  // tensors
  u64(1);  // metadata entries
  s("general.architecture");
  u32(8);  // STRING
  s("llama");
  s("token_embd.weight");
  u32(2);  // dims
  u64(32);
  u64(2);
  u32(6);  // Q5_0
  u64(0);
  while (b.size() % 32) b.push_back('\0');
  b += std::string(2 * 22, '\0');  // two Q5_0 blocks of 22 bytes
  write(d + "/m.gguf", b);
  auto msg = error_of([&] { load_model(d + "/m.gguf"); });
  EXPECT_NE(msg.find(d + "/m.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("token_embd.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Q5_0"), std::string::npos) << msg;
}

TEST(BadFiles, ExportOfUnrepresentableModelIsRefused) {
  auto c = tiny();
  c.moe.num_experts = 2;
  c.moe.num_experts_per_tok = 1;
  c.moe.scoring_func = config::RouterScoring::SIGMOID;
  Transformer m(spec_from_config(c));
  auto msg = error_of([&] { save_hf(m, scratch("sigmoid")); });
  EXPECT_NE(msg.find("sigmoid"), std::string::npos) << msg;
}

}  // namespace
}  // namespace grpo::model
