// `grpo model info PATH` and `grpo model convert IN OUT`. PATH/IN may also be a grpo weights
// directory (a stage's final/ or a checkpoint): that is how a trained policy goes to Hugging Face.
#include <chrono>
#include <filesystem>
#include <iostream>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/model/hf_weights.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_loader.h"
#include "grpo/train/lora_policy.h"
#include "grpo/train/policy.h"
#include "grpo/util/error.h"

namespace grpo::cli {
namespace {

struct ModelArgs {
  std::string path, out, dtype = "float32", tokenizer;
  bool merge = false;  // convert: merge LoRA adapters into the weights (PEFT merge_and_unload)
};

namespace sfs = std::filesystem;

struct Loaded {
  model::Transformer model{nullptr};
  std::string tokenizer_path;  // a grpo weights directory's tokenizer file (empty for HF / GGUF inputs)
};

// A Hugging Face directory or .gguf file through the model loader; a grpo weights directory
// through the policy loader (its config.yaml rebuilds the architecture; its tokenizer must load,
// since a new model takes its vocabulary size from it).
Loaded load_any(const std::string& path, const std::string& tokenizer) {
  if (!is_grpo_weights_dir(path)) return {model::load_model(path), ""};
  auto inner = config::load_config((sfs::path(path) / "config.yaml").string()).config;
  config::Config c;
  c.model.path = path;
  c.model.device = "cpu";
  c.model.dtype = inner.model.dtype;
  if (!tokenizer.empty()) c.tokenizer = inner.tokenizer, c.tokenizer.path = tokenizer;
  const std::string tok = tokenizer.empty() ? inner.tokenizer.path : tokenizer;
  GRPO_REQUIRE(tok.empty() || sfs::exists(tok), path, "/config.yaml: tokenizer.path '", tok,
               "' is not found from this directory (relative paths are relative to where the run was started): "
               "run from there, or pass --tokenizer FILE");
  auto policy = train::load_policy(c);
  train::apply_config_lora(policy.model, c);  // a LoRA stage's final/: its adapters too
  return {policy.model, tok};
}

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

bool is_grpo_weights_dir(const std::string& p) {
  // model.safetensors (final/, an unsharded checkpoint) or shards.json (a sharded checkpoint, any world size).
  return !p.empty() && sfs::is_directory(p) &&
         (sfs::exists(sfs::path(p) / "model.safetensors") || sfs::exists(sfs::path(p) / "shards.json")) &&
         sfs::exists(sfs::path(p) / "config.yaml") && !sfs::exists(sfs::path(p) / "config.json");
}

void register_model_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand("model", "Inspect and convert policy models (HF directories, GGUF files)");
  cmd->require_subcommand(1);
  static ModelArgs info_args, conv_args;

  auto* info = cmd->add_subcommand("info", "Architecture, parameter counts (total and active per token), dtype, vocab");
  info->add_option("path", info_args.path, "Hugging Face model directory, .gguf file, or grpo weights directory (final/, a checkpoint)")->required();
  info->add_option("--tokenizer", info_args.tokenizer, "Tokenizer of a grpo weights directory, when its recorded path does not resolve from here");
  info->callback([] {
    auto t0 = std::chrono::steady_clock::now();
    auto m = load_any(info_args.path, info_args.tokenizer).model;
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

  auto* conv = cmd->add_subcommand("convert", "Convert a model (HF directory, .gguf, or a trained grpo final/ or checkpoint directory) to a Hugging Face safetensors directory");
  conv->add_option("in", conv_args.path, "Input: Hugging Face model directory, .gguf file, or grpo weights directory (final/, a checkpoint)")->required();
  conv->add_option("--tokenizer", conv_args.tokenizer, "Tokenizer of a grpo weights directory, when its recorded path does not resolve from here");
  conv->add_option("out", conv_args.out, "Output directory (config.json + model.safetensors)")->required();
  conv->add_option("--dtype", conv_args.dtype, "Stored dtype: float32, bfloat16 or float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}));
  conv->add_flag("--merge", conv_args.merge,
                 "A LoRA policy: write the merged weights W + scaling * B @ A (PEFT's merge_and_unload); its adapters "
                 "alone are final/adapter_model.safetensors");
  conv->callback([] {
    auto loaded = load_any(conv_args.path, conv_args.tokenizer);
    auto& m = loaded.model;
    if (model::has_lora(*m)) {
      GRPO_REQUIRE(conv_args.merge, conv_args.path, " is a LoRA policy: pass --merge to write merged full weights (the "
                   "adapters alone are its adapter_model.safetensors, for peft.PeftModel.from_pretrained)");
      model::merge_and_unload(*m);
    }
    const auto dt = conv_args.dtype == "bfloat16" ? torch::kBFloat16
                    : conv_args.dtype == "float16" ? torch::kFloat16
                                                   : torch::kFloat32;
    model::save_hf(m, conv_args.out, dt);
    std::cout << "wrote " << conv_args.out << " (" << m->spec().architecture << ", " << conv_args.dtype << ")\n";
    // The tokenizer beside the weights, under the name transformers looks for.
    const std::string& tok = loaded.tokenizer_path;
    if (!tok.empty() && sfs::is_regular_file(tok)) {
      const std::string ext = sfs::path(tok).extension().string();
      const char* name = ext == ".json" ? "tokenizer.json" : ext == ".model" ? "tokenizer.model" : nullptr;
      if (name) {
        sfs::copy_file(tok, sfs::path(conv_args.out) / name, sfs::copy_options::overwrite_existing);
        std::cout << "copied the tokenizer " << tok << " to " << (sfs::path(conv_args.out) / name).string() << "\n";
      }
    }
  });
}

}  // namespace grpo::cli
