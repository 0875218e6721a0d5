#include "grpo/model/hf_config.h"

#include "arch_table.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::model {
namespace {

struct Reader {
  const nlohmann::json& j;
  const std::string& path;

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  [[noreturn]] void wrong(const char* key, const char* expected) const {
    throw InputError(str(path, ": key '", key, "' expected ", expected, ", got ", j[key].dump()));
  }
  int integer(const char* key) const {
    if (!has(key)) throw InputError(str(path, ": missing required key '", key, "'"));
    return integer(key, 0);
  }
  int integer(const char* key, int dflt) const {
    if (!has(key)) return dflt;
    if (!j[key].is_number_integer()) wrong(key, "an integer");
    return j[key].get<int>();
  }
  double number(const char* key, double dflt) const {
    if (!has(key)) return dflt;
    if (!j[key].is_number()) wrong(key, "a number");
    return j[key].get<double>();
  }
  bool boolean(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    if (!j[key].is_boolean()) wrong(key, "true or false");
    return j[key].get<bool>();
  }
  std::string string(const char* key, const std::string& dflt) const {
    if (!has(key)) return dflt;
    if (!j[key].is_string()) wrong(key, "a string");
    return j[key].get<std::string>();
  }
};

int first_token_id(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return -1;
  if (j[key].is_number_integer()) return j[key].get<int>();
  if (j[key].is_array() && !j[key].empty() && j[key][0].is_number_integer()) return j[key][0].get<int>();
  return -1;
}

}  // namespace

ModelSpec spec_from_hf_config(const nlohmann::json& j, const std::string& path) {
  GRPO_REQUIRE(j.is_object(), path, ": expected a JSON object");
  GRPO_REQUIRE(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                   j["architectures"][0].is_string(),
               path, ": key 'architectures' expected a list with the model class name, e.g. [\"LlamaForCausalLM\"]");
  Reader r{j, path};
  ModelSpec s;
  s.architecture = j["architectures"][0].get<std::string>();
  const ArchInfo& arch = arch_info(s.architecture, path);
  GRPO_REQUIRE(r.string("hidden_act", "silu") == "silu", path, ": key 'hidden_act' is '", r.string("hidden_act", ""),
               "', only silu (SwiGLU) is supported");
  GRPO_REQUIRE(!r.boolean("mlp_bias", false), path, ": key 'mlp_bias' = true is not supported");
  s.vocab_size = r.integer("vocab_size");
  s.hidden_size = r.integer("hidden_size");
  s.intermediate_size = r.integer("intermediate_size", arch.moe == MoeLayout::NONE ? -1 : 1);
  if (s.intermediate_size < 0) s.intermediate_size = r.integer("intermediate_size");
  s.num_hidden_layers = r.integer("num_hidden_layers");
  s.num_attention_heads = r.integer("num_attention_heads");
  s.num_key_value_heads = r.integer("num_key_value_heads", s.num_attention_heads);
  s.head_dim = r.integer("head_dim", s.num_attention_heads > 0 ? s.hidden_size / s.num_attention_heads : 0);
  s.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  s.max_position_embeddings = r.integer("max_position_embeddings", 2048);
  s.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  s.initializer_range = r.number("initializer_range", 0.02);
  s.bos_token_id = first_token_id(j, "bos_token_id");
  s.eos_token_id = first_token_id(j, "eos_token_id");

  // RoPE: transformers 5 writes rope_parameters {rope_type, rope_theta, ...}; 4.x rope_theta + rope_scaling.
  s.rope_theta = r.number("rope_theta", 10000.0);
  const nlohmann::json* rope = nullptr;
  const char* rope_key = nullptr;
  for (const char* k : {"rope_parameters", "rope_scaling"})
    if (r.has(k)) {
      GRPO_REQUIRE(j[k].is_object(), path, ": key '", k, "' expected an object, got ", j[k].dump());
      rope = &j[k];
      rope_key = k;
      break;
    }
  if (rope) {
    Reader rr{*rope, path};
    s.rope_theta = rr.number("rope_theta", s.rope_theta);
    std::string type = rr.string("rope_type", rr.string("type", "default"));
    if (type == "llama3") {
      s.rope_scaling.factor = rr.number("factor", 0);
      s.rope_scaling.low_freq_factor = rr.number("low_freq_factor", 1.0);
      s.rope_scaling.high_freq_factor = rr.number("high_freq_factor", 4.0);
      s.rope_scaling.original_max_position_embeddings = rr.integer("original_max_position_embeddings", 8192);
    } else {
      GRPO_REQUIRE(type == "default", path, ": key '", rope_key, ".rope_type' = '", type,
                   "' is not supported (default and llama3 are)");
    }
  }

  const bool qwen = s.architecture.starts_with("Qwen");
  if (qwen) {
    GRPO_REQUIRE(!r.boolean("use_sliding_window", false), path,
                 ": key 'use_sliding_window' = true is not supported for Qwen models");
  } else if (r.has("sliding_window")) {
    s.sliding_window = r.integer("sliding_window", 0);
  }
  s.attention_bias = arch.forced_qkv_bias || r.boolean("attention_bias", false);
  if (arch.moe == MoeLayout::QWEN2_MOE) s.attention_bias = r.boolean("qkv_bias", true);
  s.qk_norm = arch.qk_norm;

  auto& m = s.moe;
  switch (arch.moe) {
    case MoeLayout::NONE:
      break;
    case MoeLayout::MIXTRAL:
      m.num_experts = r.integer("num_local_experts");
      m.top_k = r.integer("num_experts_per_tok", 2);
      m.moe_intermediate_size = s.intermediate_size;
      m.norm_topk_prob = true;
      m.router_aux_loss_coef = r.number("router_aux_loss_coef", 0.001);
      break;
    case MoeLayout::QWEN2_MOE:
    case MoeLayout::QWEN3_MOE:
      // transformers 5 saves Qwen3-MoE's count as num_local_experts (attribute_map); hub files say num_experts.
      m.num_experts = r.has("num_experts") ? r.integer("num_experts") : r.integer("num_local_experts");
      m.top_k = r.integer("num_experts_per_tok");
      m.moe_intermediate_size = r.integer("moe_intermediate_size");
      m.norm_topk_prob = r.boolean("norm_topk_prob", false);
      m.router_aux_loss_coef = r.number("router_aux_loss_coef", 0.001);
      m.decoder_sparse_step = r.integer("decoder_sparse_step", 1);
      if (r.has("mlp_only_layers")) {
        GRPO_REQUIRE(j["mlp_only_layers"].is_array(), path, ": key 'mlp_only_layers' expected a list of layer indices");
        for (const auto& v : j["mlp_only_layers"]) {
          GRPO_REQUIRE(v.is_number_integer(), path, ": key 'mlp_only_layers' expected integers, got ", v.dump());
          m.mlp_only_layers.push_back(v.get<int>());
        }
      }
      if (arch.moe == MoeLayout::QWEN2_MOE) {
        m.shared_intermediate_size = r.integer("shared_expert_intermediate_size");
        m.n_shared_experts = m.shared_intermediate_size > 0 ? 1 : 0;
        m.shared_expert_gate = m.n_shared_experts > 0;
      }
      break;
  }
  s.validate(path);
  return s;
}

ModelSpec read_hf_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(str(path, ": not valid JSON: ", e.what()));
  }
  return spec_from_hf_config(j, path);
}

nlohmann::ordered_json hf_config_from_spec(const ModelSpec& s, const std::string& dtype) {
  const ArchInfo& arch = arch_info(s.architecture, "export");
  const auto& m = s.moe;
  const bool moe = m.num_experts > 0;
  GRPO_REQUIRE(!moe || m.scoring == config::RouterScoring::SOFTMAX, "export to ", s.architecture,
               ": sigmoid router scoring has no Hugging Face equivalent in the supported architectures");
  GRPO_REQUIRE(!moe || m.first_k_dense_replace == 0, "export to ", s.architecture,
               ": first_k_dense_replace > 0 has no equivalent (use mlp_only_layers-style Qwen MoE layouts)");
  GRPO_REQUIRE(m.n_shared_experts == 0 || m.shared_expert_gate, "export to ", s.architecture,
               ": ungated shared experts have no Hugging Face equivalent in the supported architectures");
  GRPO_REQUIRE(arch.moe == MoeLayout::NONE || moe, "export: ", s.architecture, " needs experts");
  GRPO_REQUIRE(s.attention_bias == arch.forced_qkv_bias || arch.model_type != "qwen2", "export: Qwen2 always has q/k/v biases");
  GRPO_REQUIRE(s.qk_norm == arch.qk_norm, "export to ", s.architecture, ": qk_norm must be ", arch.qk_norm);

  nlohmann::ordered_json j;
  j["architectures"] = {s.architecture};
  j["model_type"] = arch.model_type;
  j["vocab_size"] = s.vocab_size;
  j["hidden_size"] = s.hidden_size;
  j["intermediate_size"] = s.intermediate_size;
  j["num_hidden_layers"] = s.num_hidden_layers;
  j["num_attention_heads"] = s.num_attention_heads;
  j["num_key_value_heads"] = s.num_key_value_heads;
  j["head_dim"] = s.head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = s.rms_norm_eps;
  j["max_position_embeddings"] = s.max_position_embeddings;
  j["tie_word_embeddings"] = s.tie_word_embeddings;
  j["initializer_range"] = s.initializer_range;
  j["attention_dropout"] = 0.0;
  j["rope_theta"] = s.rope_theta;
  nlohmann::ordered_json rope = {{"rope_type", "default"}, {"rope_theta", s.rope_theta}};
  if (s.rope_scaling.factor > 0) {
    rope = {{"rope_type", "llama3"},
            {"rope_theta", s.rope_theta},
            {"factor", s.rope_scaling.factor},
            {"low_freq_factor", s.rope_scaling.low_freq_factor},
            {"high_freq_factor", s.rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", s.rope_scaling.original_max_position_embeddings}};
    j["rope_scaling"] = rope;
  }
  j["rope_parameters"] = rope;
  if (arch.model_type == "llama" || arch.model_type == "qwen3" || arch.model_type == "qwen3_moe") {
    j["attention_bias"] = s.attention_bias;
  } else if (arch.model_type == "qwen2_moe") {
    j["qkv_bias"] = s.attention_bias;
  } else {
    GRPO_REQUIRE(s.attention_bias == arch.forced_qkv_bias, "export to ", s.architecture,
                 ": attention_bias = ", s.attention_bias, " is not representable");
  }
  if (arch.model_type == "mistral" || arch.model_type == "mixtral")
    j["sliding_window"] = s.sliding_window > 0 ? nlohmann::ordered_json(s.sliding_window) : nlohmann::ordered_json();
  else
    GRPO_REQUIRE(s.sliding_window == 0, "export to ", s.architecture, ": sliding_window is not representable");
  if (arch.model_type == "qwen2" || arch.model_type == "qwen3" || arch.model_type == "qwen2_moe" ||
      arch.model_type == "qwen3_moe")
    j["use_sliding_window"] = false;
  if (arch.moe == MoeLayout::MIXTRAL) {
    GRPO_REQUIRE(m.moe_intermediate_size == s.intermediate_size && m.norm_topk_prob && m.n_shared_experts == 0 &&
                     m.decoder_sparse_step == 1 && m.mlp_only_layers.empty(),
                 "export to MixtralForCausalLM: experts must have intermediate_size, renormalised top-k, no shared "
                 "expert and no dense layers");
    j["num_local_experts"] = m.num_experts;
    j["num_experts_per_tok"] = m.top_k;
    j["router_aux_loss_coef"] = m.router_aux_loss_coef;
  } else if (arch.moe != MoeLayout::NONE) {
    j["num_experts"] = m.num_experts;
    j["num_experts_per_tok"] = m.top_k;
    j["moe_intermediate_size"] = m.moe_intermediate_size;
    j["norm_topk_prob"] = m.norm_topk_prob;
    j["router_aux_loss_coef"] = m.router_aux_loss_coef;
    j["decoder_sparse_step"] = m.decoder_sparse_step;
    j["mlp_only_layers"] = m.mlp_only_layers;
    if (arch.moe == MoeLayout::QWEN2_MOE) j["shared_expert_intermediate_size"] = m.shared_intermediate_size;
    else GRPO_REQUIRE(m.n_shared_experts == 0, "export to ", s.architecture, ": has no shared experts");
  }
  if (s.bos_token_id >= 0) j["bos_token_id"] = s.bos_token_id;
  if (s.eos_token_id >= 0) j["eos_token_id"] = s.eos_token_id;
  j["torch_dtype"] = dtype;
  return j;
}

}  // namespace grpo::model
