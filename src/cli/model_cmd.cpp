// `grpo model info PATH` and `grpo model convert IN OUT`.
#include <chrono>
#include <iostream>

#include "grpo/cli/commands.h"
#include "grpo/model/hf_weights.h"
#include "grpo/model/model_loader.h"
#include "grpo/util/error.h"

namespace grpo::cli {
namespace {

struct ModelArgs {
  std::string path, out, dtype = "float32";
};

std::string human(int64_t n) {
  std::ostringstream os;
  os.precision(3);
  if (n >= 1000000000) os << n / 1e9 << "B";
  else if (n >= 1000000) os << n / 1e6 << "M";
  else if (n >= 1000) os << n / 1e3 << "K";
  else os << n;
  return os.str();
}

std::string dtype_name(torch::Dtype d) {
  return d == torch::kBFloat16 ? "bfloat16" : d == torch::kFloat16 ? "float16" : d == torch::kFloat32 ? "float32" : c10::toString(d);
}

}  // namespace

void register_model_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand("model", "Inspect and convert policy models (HF directories, GGUF files)");
  cmd->require_subcommand(1);
  static ModelArgs info_args, conv_args;

  auto* info = cmd->add_subcommand("info", "Architecture, parameter counts (total and active per token), dtype, vocab");
  info->add_option("path", info_args.path, "Hugging Face model directory or .gguf file")->required();
  info->callback([] {
    auto t0 = std::chrono::steady_clock::now();
    auto m = model::load_model(info_args.path);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& s = m->spec();
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    std::cout << "path: " << info_args.path << "\n"
              << "architecture: " << s.architecture << "\n"
              << "parameters: " << n << " (" << human(n) << ")\n"
              << "active_parameters_per_token: " << s.active_parameter_count() << " ("
              << human(s.active_parameter_count()) << ")\n"
              << "dtype: " << dtype_name(m->dtype()) << " (as loaded)\n"
              << "vocab_size: " << s.vocab_size << "\n"
              << "hidden_size: " << s.hidden_size << "\n"
              << "layers: " << s.num_hidden_layers << "\n"
              << "heads: " << s.num_attention_heads << " (kv " << s.num_key_value_heads << ", head_dim " << s.head_dim
              << ")\n"
              << "experts: " << s.moe.num_experts << " (top_k " << (s.moe.num_experts ? s.moe.top_k : 0)
              << ", shared " << s.moe.n_shared_experts << ")\n"
              << "tie_word_embeddings: " << (s.tie_word_embeddings ? "true" : "false") << "\n"
              << "load_seconds: " << secs << "\n";
  });

  auto* conv = cmd->add_subcommand("convert", "Convert a model (HF directory or .gguf) to a Hugging Face safetensors directory");
  conv->add_option("in", conv_args.path, "Input: Hugging Face model directory or .gguf file")->required();
  conv->add_option("out", conv_args.out, "Output directory (config.json + model.safetensors)")->required();
  conv->add_option("--dtype", conv_args.dtype, "Stored dtype: float32, bfloat16 or float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}));
  conv->callback([] {
    auto m = model::load_model(conv_args.path);
    const auto dt = conv_args.dtype == "bfloat16" ? torch::kBFloat16
                    : conv_args.dtype == "float16" ? torch::kFloat16
                                                   : torch::kFloat32;
    model::save_hf(m, conv_args.out, dt);
    std::cout << "wrote " << conv_args.out << " (" << m->spec().architecture << ", " << conv_args.dtype << ")\n";
  });
}

}  // namespace grpo::cli
