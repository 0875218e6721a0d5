// Forward+backward throughput of the policy on CPU (float32): a ~10M-parameter dense model and a
// small MoE, with a plain next-token cross-entropy loss. Prints one JSON line per model.
// bench/model_vs_pytorch.py runs this beside the same models in PyTorch eager (transformers) and
// prints the ratio. Usage: bench_model_bench [dense|moe|both] [batch] [seq] [steps] [threads]
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <string>

#include "grpo/model/transformer.h"

using namespace grpo;

static model::ModelSpec bench_spec(bool moe) {
  config::ModelConfig c;
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

static void run(bool moe, int64_t batch, int64_t seq, int steps) {
  torch::manual_seed(0);
  model::Transformer m(bench_spec(moe));
  m->train();
  auto ids = torch::randint(0, m->spec().vocab_size, {batch, seq + 1}, torch::kInt64);
  auto step = [&] {
    auto out = m->forward(ids.narrow(1, 0, seq));
    auto logits = m->logits(out.hidden);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, m->spec().vocab_size}),
                                                     ids.narrow(1, 1, seq).reshape({-1})) +
                m->spec().moe.router_aux_loss_coef * out.aux_loss;
    m->zero_grad();
    loss.backward();
  };
  step();  // warm-up (allocator, oneDNN primitive caches)
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  std::cout << "{\"model\": \"" << (moe ? "moe" : "dense") << "\", \"params\": " << n
            << ", \"active_params\": " << m->spec().active_parameter_count() << ", \"batch\": " << batch
            << ", \"seq\": " << seq << ", \"steps\": " << steps << ", \"tokens_per_s\": " << batch * seq * steps / secs
            << "}" << std::endl;
}

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "both";
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 4;
  const int64_t seq = argc > 3 ? std::stoll(argv[3]) : 256;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 3;
  if (argc > 5) torch::set_num_threads(std::stoi(argv[5]));
  if (which == "dense" || which == "both") run(false, batch, seq, steps);
  if (which == "moe" || which == "both") run(true, batch, seq, steps);
  return 0;
}
