#include "grpo/model/gguf_weights.h"

#include <regex>

#include "arch_table.h"
#include "grpo/util/error.h"

namespace grpo::model {

ModelSpec spec_from_gguf(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  GRPO_REQUIRE(arch == "llama", f.path(), ": GGUF architecture '", arch, "' is not supported (only llama)");
  ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  const auto& embd = f.tensor("token_embd.weight");
  s.vocab_size = static_cast<int>(embd.shape()[0]);
  s.hidden_size = static_cast<int>(f.get_int("llama.embedding_length"));
  s.intermediate_size = static_cast<int>(f.get_int("llama.feed_forward_length"));
  s.num_hidden_layers = static_cast<int>(f.get_int("llama.block_count"));
  s.num_attention_heads = static_cast<int>(f.get_int("llama.attention.head_count"));
  s.num_key_value_heads = static_cast<int>(f.get_int("llama.attention.head_count_kv", s.num_attention_heads));
  s.head_dim = static_cast<int>(f.get_int("llama.attention.key_length",
                                          f.get_int("llama.rope.dimension_count", s.hidden_size / std::max(1, s.num_attention_heads))));
  s.rope_theta = f.get_double("llama.rope.freq_base", 10000.0);
  s.rms_norm_eps = f.get_double("llama.attention.layer_norm_rms_epsilon", 1e-5);
  s.max_position_embeddings = static_cast<int>(f.get_int("llama.context_length", 2048));
  s.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  s.bos_token_id = static_cast<int>(f.get_int("tokenizer.ggml.bos_token_id", -1));
  s.eos_token_id = static_cast<int>(f.get_int("tokenizer.ggml.eos_token_id", -1));
  const std::string scaling = f.get_string("llama.rope.scaling.type", "none");
  GRPO_REQUIRE(scaling == "none", f.path(), ": llama.rope.scaling.type '", scaling, "' is not supported");
  s.validate(f.path());
  return s;
}

torch::Tensor unpermute_qk(const torch::Tensor& w, int64_t n_head) {
  const int64_t rows = w.size(0);
  return w.reshape({n_head, rows / n_head / 2, 2, -1}).transpose(1, 2).reshape(w.sizes());
}

Transformer load_gguf(const std::string& path) {
  gguf::File f(path);
  // Unsupported quantisation is the most likely problem with a real file: say so before anything else.
  for (const auto& t : f.tensors())
    GRPO_REQUIRE(gguf::can_dequantize(t.type), path, ": tensor '", t.name, "' has type ", gguf::tensor_type_name(t.type),
                 ", which grpo cannot dequantise (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  ModelSpec spec = spec_from_gguf(f);
  Transformer model(spec);
  torch::NoGradGuard ng;
  static const std::regex q_re(R"(layers\.\d+\.self_attn\.q_proj\.(weight|bias))"),
      k_re(R"(layers\.\d+\.self_attn\.k_proj\.(weight|bias))");
  for (auto& p : model->named_parameters()) {
    const std::string name = gguf_tensor_name(p.key());
    GRPO_CHECK(!name.empty(), "no GGUF name for parameter ", p.key());
    const auto* info = f.find_tensor(name);
    GRPO_REQUIRE(info, path, ": missing tensor '", name, "'");
    auto& dst = p.value();
    GRPO_REQUIRE(info->shape() == dst.sizes().vec(), path, ": tensor '", name, "' has shape ", c10::IntArrayRef(info->shape()),
                 ", the model built from its metadata expects ", dst.sizes());
    auto w = torch::empty(dst.sizes(), torch::kFloat32);
    f.dequantize_into(*info, w.data_ptr<float>());
    if (std::regex_match(p.key(), q_re)) w = unpermute_qk(w, spec.num_attention_heads);
    if (std::regex_match(p.key(), k_re)) w = unpermute_qk(w, spec.num_key_value_heads);
    dst.copy_(w);
  }
  return model;
}

}  // namespace grpo::model
