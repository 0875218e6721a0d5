// Export round trip: a model trained a few AdamW steps is exported to HF safetensors + config.json
// and transformers (scripts/check_hf_logits.py) must produce the same logits.
#include <gtest/gtest.h>

#include <filesystem>

#include "grpo/model/hf_weights.h"
#include "test_support.h"

namespace grpo::model {
namespace {

struct ExportCase {
  std::string name;
  config::ModelConfig cfg;
};

config::ModelConfig base() {
  config::ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.initializer_range = 0.1;
  return c;
}

std::vector<ExportCase> cases() {
  std::vector<ExportCase> v;
  v.push_back({"llama_tied", base()});
  auto moe = base();
  moe.tie_word_embeddings = false;
  moe.moe.num_experts = 4;
  moe.moe.num_experts_per_tok = 2;
  v.push_back({"mixtral", moe});
  auto qmoe = moe;
  qmoe.attention_bias = true;
  qmoe.moe.n_shared_experts = 1;
  qmoe.moe.moe_intermediate_size = 24;
  qmoe.moe.norm_topk_prob = false;
  v.push_back({"qwen2_moe", qmoe});
  auto q3 = base();
  q3.qk_norm = true;
  v.push_back({"qwen3", q3});
  return v;
}

// All cases in one test so transformers is imported once (its import dominates the run time).
TEST(Export, TrainedModelsLoadInTransformersWithSameLogits) {
  struct Run {
    std::string dir;
    Transformer model;
    torch::Tensor ids, mask;
  };
  std::vector<Run> runs;
  std::string cmd = std::string(GRPO_PYTHON) + " " + GRPO_SOURCE_DIR + "/scripts/check_hf_logits.py";
  const std::string root = testing::build_dir() + "/export_test";
  std::filesystem::remove_all(root);
  for (const auto& c : cases()) {
    torch::manual_seed(11);
    Transformer model(spec_from_config(c.cfg));
    torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2));
    auto data = torch::randint(0, c.cfg.vocab_size, {4, 10}, torch::kInt64);
    double first = 0, last = 0;
    for (int step = 0; step < 5; ++step) {
      auto out = model->forward(data.narrow(1, 0, 9));
      auto logits = model->logits(out.hidden);
      auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, c.cfg.vocab_size}),
                                                       data.narrow(1, 1, 9).reshape({-1})) +
                  model->spec().moe.router_aux_loss_coef * out.aux_loss;
      opt.zero_grad();
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = loss.item<double>();
    }
    EXPECT_LT(last, first) << c.name;  // the steps did train the model
    const std::string dir = root + "/" + c.name;
    save_hf(model, dir);
    model->eval();
    auto ids = torch::randint(0, c.cfg.vocab_size, {2, 7}, torch::kInt64);
    auto mask = torch::ones({2, 7}, torch::kInt64);
    mask[1].narrow(0, 5, 2).fill_(0);
    testing::write_tensors(dir + "/input.safetensors", {{"input_ids", ids}, {"attention_mask", mask}});
    cmd += " " + dir + " " + dir + "/input.safetensors " + dir + "/logits.safetensors";
    runs.push_back({dir, model, ids, mask});
  }
  cmd += " > " + root + "/check.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << fs::read_file(root + "/check.log");
  torch::NoGradGuard ng;
  for (auto& r : runs) {
    auto ref = testing::read_tensors(r.dir + "/logits.safetensors")["logits"];
    auto ours = r.model->logits(r.model->forward(r.ids, r.mask).hidden);
    auto valid = r.mask.to(torch::kBool);
    // Acceptance bound; float32 reassociation between the two implementations is ~1e-7 relative.
    EXPECT_LE(testing::rel_err(ours.index({valid}), ref.index({valid})), 1e-5) << r.dir;
    // And our own loader reads the export back exactly.
    Transformer back = load_hf(r.dir);
    back->eval();
    EXPECT_TRUE(torch::equal(back->logits(back->forward(r.ids, r.mask).hidden), ours)) << r.dir;
  }
}

}  // namespace
}  // namespace grpo::model
