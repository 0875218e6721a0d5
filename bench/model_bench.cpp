// Forward+backward throughput of the policy on CPU (float32), with a plain next-token
// cross-entropy loss, for three models: a ~10M-parameter dense one, SmolLM2-135M's shape, and a
// small MoE. Each model runs in several kernel implementations in the same process, the timed
// steps interleaved (plain, fused, plain, fused, ...) so that a loaded machine slows them alike:
//   plain   kernels.fused_ops=false
//   fused   kernels.fused_ops=true through model::apply_kernels (what a run gets)
//   grouped fused, and every MoE layer on the grouped path (moe_permute / moe_grouped_gemm /
//           moe_unpermute) instead of the per-expert loop (MoE models only; apply_kernels keeps
//           the loop on CPU, this measures whether it should)
// Prints one JSON line per (model, impl): median seconds per step and tokens/s.
// bench/model_vs_pytorch.py runs this beside the same models in PyTorch eager (transformers).
// Usage: bench_model_bench [dense|smollm|moe|all] [batch] [seq] [steps] [threads] [impls]
//   impls: comma-separated subset of plain,fused,grouped (default all that apply)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "grpo/model/apply_kernels.h"
#include "grpo/model/moe.h"
#include "grpo/model/transformer.h"

using namespace grpo;

static model::ModelSpec bench_spec(const std::string& which) {
  config::ModelConfig c;
  if (which == "smollm") {  // HuggingFaceTB/SmolLM2-135M config.json
    c.vocab_size = 49152;
    c.hidden_size = 576;
    c.intermediate_size = 1536;
    c.num_hidden_layers = 30;
    c.num_attention_heads = 9;
    c.num_key_value_heads = 3;
    c.rope_theta = 100000.0;
    c.rms_norm_eps = 1e-5;
    c.tie_word_embeddings = true;
    return model::spec_from_config(c);
  }
  const bool moe = which == "moe";
  c.vocab_size = 8192;
  c.hidden_size = 256;
  c.intermediate_size = 704;
  c.num_hidden_layers = moe ? 4 : 10;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = !moe;
  if (moe) {
    c.moe.num_experts = 8;
    c.moe.num_experts_per_tok = 2;
    c.moe.moe_intermediate_size = 256;
  }
  return model::spec_from_config(c);
}

static model::Transformer build(const std::string& which, const std::string& impl) {
  torch::manual_seed(0);  // the same weights in every implementation
  model::Transformer m(bench_spec(which));
  config::KernelsConfig k;
  k.fused_ops = impl != "plain";
  model::apply_kernels(*m, k);  // logs its line on stderr; the JSON goes to stdout
  if (impl == "grouped")
    for (const auto& mod : m->modules(false))
      if (auto* e = dynamic_cast<model::MoeImpl*>(mod.get())) e->impl = model::OpImpl::GRPO;
  m->train();
  return m;
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

static void run(const std::string& which, const std::vector<std::string>& impls, int64_t batch, int64_t seq, int steps) {
  std::vector<model::Transformer> models;
  for (const auto& impl : impls) models.push_back(build(which, impl));
  const auto& spec = models[0]->spec();
  torch::manual_seed(1);
  auto ids = torch::randint(0, spec.vocab_size, {batch, seq + 1}, torch::kInt64);
  auto step = [&](model::Transformer& m) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = m->forward(ids.narrow(1, 0, seq));
    auto logits = m->logits(out.hidden);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, spec.vocab_size}),
                                                     ids.narrow(1, 1, seq).reshape({-1})) +
                spec.moe.router_aux_loss_coef * out.aux_loss;
    m->zero_grad();
    loss.backward();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (auto& m : models) step(m);  // warm-up (allocator, oneDNN primitive caches)
  std::vector<std::vector<double>> secs(models.size());
  for (int i = 0; i < steps; ++i)
    for (size_t j = 0; j < models.size(); ++j) secs[j].push_back(step(models[j]));
  int64_t n = 0;
  for (const auto& p : models[0]->parameters()) n += p.numel();
  for (size_t j = 0; j < models.size(); ++j) {
    const double s = median(secs[j]);
    std::cout << "{\"model\": \"" << which << "\", \"impl\": \"" << impls[j] << "\", \"params\": " << n
              << ", \"active_params\": " << spec.active_parameter_count() << ", \"batch\": " << batch
              << ", \"seq\": " << seq << ", \"steps\": " << steps << ", \"median_step_s\": " << s
              << ", \"tokens_per_s\": " << batch * seq / s << "}" << std::endl;
  }
}

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 4;
  const int64_t seq = argc > 3 ? std::stoll(argv[3]) : 256;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 3;
  if (argc > 5) torch::set_num_threads(std::stoi(argv[5]));
  std::vector<std::string> impls;
  std::stringstream ss(argc > 6 ? argv[6] : "plain,fused,grouped");
  for (std::string s; std::getline(ss, s, ',');) impls.push_back(s);
  for (const std::string m : {"dense", "smollm", "moe"}) {
    if (which != "all" && which != m) continue;
    std::vector<std::string> mine;
    for (const auto& i : impls)
      if (i != "grouped" || m == "moe") mine.push_back(i);
    run(m, mine, batch, seq, steps);
  }
  return 0;
}
