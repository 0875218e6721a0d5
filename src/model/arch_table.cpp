#include "arch_table.h"

#include <regex>

#include "grpo/util/error.h"

namespace grpo::model {

const std::vector<ArchInfo>& arch_table() {
  // Mixtral keeps its pre-2024 names: block_sparse_moe, experts.N.w1 (gate) / w2 (down) / w3 (up).
  static const std::vector<ArchInfo> table = {
      {"LlamaForCausalLM", "llama", false, false, MoeLayout::NONE, {}},
      {"MistralForCausalLM", "mistral", false, false, MoeLayout::NONE, {}},
      {"Qwen2ForCausalLM", "qwen2", true, false, MoeLayout::NONE, {}},
      {"Qwen3ForCausalLM", "qwen3", false, true, MoeLayout::NONE, {}},
      {"MixtralForCausalLM",
       "mixtral",
       false,
       false,
       MoeLayout::MIXTRAL,
       {{".mlp.", ".block_sparse_moe."}, {".gate_proj.", ".w1."}, {".down_proj.", ".w2."}, {".up_proj.", ".w3."}}},
      {"Qwen2MoeForCausalLM", "qwen2_moe", false, false, MoeLayout::QWEN2_MOE, {}},
      {"Qwen3MoeForCausalLM", "qwen3_moe", false, true, MoeLayout::QWEN3_MOE, {}},
  };
  return table;
}

const ArchInfo& arch_info(const std::string& hf_class, const std::string& where) {
  std::string known;
  for (const auto& a : arch_table()) {
    if (a.hf_class == hf_class) return a;
    known += (known.empty() ? "" : ", ") + a.hf_class;
  }
  throw InputError(str(where, ": unsupported architecture '", hf_class, "'; supported: ", known));
}

std::string hf_tensor_name(const ArchInfo& arch, const std::string& name) {
  if (name == "lm_head.weight") return name;
  std::string n = "model." + name;
  for (const auto& [from, to] : arch.renames) {
    if (arch.moe == MoeLayout::MIXTRAL && from != ".mlp." && n.find(".experts.") == std::string::npos) continue;
    for (size_t p = n.find(from); p != std::string::npos; p = n.find(from, p + to.size())) n.replace(p, from.size(), to);
  }
  return n;
}

bool is_optional_tensor(const std::string& name) { return name.ends_with("e_score_correction_bias"); }

std::string gguf_tensor_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> top = {
      {"embed_tokens.weight", "token_embd.weight"}, {"norm.weight", "output_norm.weight"}, {"lm_head.weight", "output.weight"}};
  for (const auto& [a, b] : top)
    if (name == a) return b;
  static const std::regex layer_re(R"(layers\.(\d+)\.(.+))");
  static const std::vector<std::pair<std::string, std::string>> per_layer = {
      {"self_attn.q_proj.weight", "attn_q.weight"},     {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},     {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},         {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},         {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},          {"mlp.down_proj.weight", "ffn_down.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"}};
  std::smatch m;
  if (!std::regex_match(name, m, layer_re)) return "";
  for (const auto& [a, b] : per_layer)
    if (m[2] == a) return "blk." + m[1].str() + "." + b;
  return "";
}

}  // namespace grpo::model
