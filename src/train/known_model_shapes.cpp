// config.json of the models the research configs name (configs/research/*.yaml), so that `grpo
// plan` can size them before their weights are downloaded. Copied from the models' Hugging Face
// repositories (config.json, the keys that shape the model); the parameter counts that
// transformers builds from them are checked in tests/train/memory_plan_test.cpp.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include "grpo/train/memory_plan.h"

namespace grpo::train {
namespace {

const std::pair<const char*, const char*> kKnown[] = {
    {"qwen2.5-0.5b-instruct",
     R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_act":"silu","hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false})"},
    {"qwen2.5-1.5b-instruct",
     R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_act":"silu","hidden_size":1536,"intermediate_size":8960,"num_hidden_layers":28,"num_attention_heads":12,"num_key_value_heads":2,"max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false})"},
    {"qwen2.5-3b-instruct",
     R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_act":"silu","hidden_size":2048,"intermediate_size":11008,"num_hidden_layers":36,"num_attention_heads":16,"num_key_value_heads":2,"max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false})"},
    {"qwen2.5-7b-instruct",
     R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_act":"silu","hidden_size":3584,"intermediate_size":18944,"num_hidden_layers":28,"num_attention_heads":28,"num_key_value_heads":4,"max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":false,"vocab_size":152064,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false})"},
    {"qwen2.5-7b",
     R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_act":"silu","hidden_size":3584,"intermediate_size":18944,"num_hidden_layers":28,"num_attention_heads":28,"num_key_value_heads":4,"max_position_embeddings":131072,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":false,"vocab_size":152064,"bos_token_id":151643,"eos_token_id":151643,"use_sliding_window":false})"},
    {"qwen3-1.7b",
     R"({"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","hidden_act":"silu","hidden_size":2048,"intermediate_size":6144,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"attention_bias":false,"max_position_embeddings":40960,"rms_norm_eps":1e-06,"rope_theta":1000000,"tie_word_embeddings":true,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false})"},
    {"qwen1.5-moe-a2.7b-chat",
     R"({"architectures":["Qwen2MoeForCausalLM"],"model_type":"qwen2_moe","hidden_act":"silu","hidden_size":2048,"intermediate_size":5632,"moe_intermediate_size":1408,"shared_expert_intermediate_size":5632,"num_experts":60,"num_experts_per_tok":4,"norm_topk_prob":false,"decoder_sparse_step":1,"mlp_only_layers":[],"num_hidden_layers":24,"num_attention_heads":16,"num_key_value_heads":16,"max_position_embeddings":8192,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":false,"vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"use_sliding_window":false,"router_aux_loss_coef":0.001})"},
};

}  // namespace

std::string known_model_config_json(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.empty()) name = std::filesystem::path(path).parent_path().filename().string();  // "dir/"
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& [key, json] : kKnown)
    if (name == key) return json;
  return "";
}

}  // namespace grpo::train
