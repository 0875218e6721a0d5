#pragma once
// model: and tokenizer: sections. Names follow Hugging Face config.json / DeepSeek-V3 where one exists.
#include <string>

#include "grpo/config/reflect.h"

namespace grpo::config {

enum class DType { FLOAT32, BFLOAT16, FLOAT16, FLOAT64 };
template <> struct EnumNames<DType> {
  static constexpr std::pair<DType, std::string_view> items[] = {
      {DType::FLOAT32, "float32"}, {DType::BFLOAT16, "bfloat16"}, {DType::FLOAT16, "float16"},
      {DType::FLOAT64, "float64"}};
};

enum class RouterScoring { SOFTMAX, SIGMOID };
template <> struct EnumNames<RouterScoring> {
  static constexpr std::pair<RouterScoring, std::string_view> items[] = {{RouterScoring::SOFTMAX, "softmax"},
                                                                         {RouterScoring::SIGMOID, "sigmoid"}};
};

/// Mixture of experts (DeepSeekMoE / DeepSeek-V3). num_experts == 0 means a dense model.
struct MoeConfig {
  int num_experts = 0;                 // routed experts per MoE layer (n_routed_experts)
  int num_experts_per_tok = 2;         // top_k
  int n_shared_experts = 0;            // always-active experts
  int moe_intermediate_size = 0;       // 0: intermediate_size
  int first_k_dense_replace = 0;       // bottom layers kept dense
  RouterScoring scoring_func = RouterScoring::SOFTMAX;
  bool norm_topk_prob = true;
  double router_aux_loss_coef = 0.001;  // switch-style load-balancing loss coefficient
  double bias_update_speed = 0.0;       // DeepSeek-V3 aux-loss-free bias update (gamma); 0 = off

  template <class V> void visit(V& v) {
    v("num_experts", num_experts, "Routed experts per MoE layer; 0 makes the model dense.", at_least(0));
    v("num_experts_per_tok", num_experts_per_tok, "Experts each token is routed to (top_k).", at_least(1));
    v("n_shared_experts", n_shared_experts, "Shared experts every token passes through.", at_least(0));
    v("moe_intermediate_size", moe_intermediate_size, "Hidden size of each expert's SwiGLU; 0 = model.intermediate_size.", at_least(0));
    v("first_k_dense_replace", first_k_dense_replace, "Number of bottom layers that stay dense.", at_least(0));
    v("scoring_func", scoring_func, "Router score function (DeepSeek-V3 uses sigmoid).");
    v("norm_topk_prob", norm_topk_prob, "Renormalise the top_k routing weights to sum to 1.");
    v("router_aux_loss_coef", router_aux_loss_coef, "Coefficient of the switch-style auxiliary load-balancing loss.", at_least(0));
    v("bias_update_speed", bias_update_speed, "Aux-loss-free balancing: per-expert bias update speed (DeepSeek-V3 gamma); 0 = off.", at_least(0));
  }
};

struct ModelConfig {
  std::string path;  // HF dir, .gguf file or a grpo checkpoint; "" = initialise from the fields below
  DType dtype = DType::FLOAT32;
  std::string device = "auto";
  // Architecture, used when path is empty (training from scratch).
  int vocab_size = 0;  // 0: take it from the tokenizer
  int hidden_size = 256;
  int intermediate_size = 688;
  int num_hidden_layers = 4;
  int num_attention_heads = 4;
  int num_key_value_heads = 2;
  int head_dim = 0;  // 0: hidden_size / num_attention_heads
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = true;
  bool attention_bias = false;
  bool qk_norm = false;
  double initializer_range = 0.02;
  MoeConfig moe;

  template <class V> void visit(V& v) {
    v("path", path, "Model to load: a Hugging Face directory (config.json + safetensors), a .gguf file or a grpo checkpoint directory. Empty: initialise a new model from the fields below.");
    v("dtype", dtype, "Parameter dtype for training and rollout. float64 is for numerical tests (e.g. sharded vs unsharded parity at the rounding of float64 sums); sampling and rewards are unchanged.");
    v("device", device, "auto (cuda when available), cpu, cuda or cuda:N.");
    v("vocab_size", vocab_size, "Vocabulary size of a new model; 0 takes the tokenizer's.", at_least(0));
    v("hidden_size", hidden_size, "Model width (d_model) of a new model.", at_least(1));
    v("intermediate_size", intermediate_size, "SwiGLU hidden size of dense layers.", at_least(1));
    v("num_hidden_layers", num_hidden_layers, "Transformer blocks.", at_least(1));
    v("num_attention_heads", num_attention_heads, "Query heads.", at_least(1));
    v("num_key_value_heads", num_key_value_heads, "Key/value heads (grouped-query attention).", at_least(1));
    v("head_dim", head_dim, "Per-head dimension; 0 = hidden_size / num_attention_heads.", at_least(0));
    v("rope_theta", rope_theta, "RoPE base frequency.", greater_than(0));
    v("rms_norm_eps", rms_norm_eps, "RMSNorm epsilon.", greater_than(0));
    v("max_position_embeddings", max_position_embeddings, "Longest sequence (prompt + completion) in tokens.", at_least(1));
    v("tie_word_embeddings", tie_word_embeddings, "Share the input embedding with the output head.");
    v("attention_bias", attention_bias, "Biases on q/k/v projections (Qwen2).");
    v("qk_norm", qk_norm, "RMSNorm on per-head q and k (Qwen3).");
    v("initializer_range", initializer_range, "Std of the normal initialisation of a new model.", greater_than(0));
    v("moe", moe, "Mixture of experts.");
  }
};

enum class TokenizerType { AUTO, SENTENCEPIECE, BPE, GGUF };
template <> struct EnumNames<TokenizerType> {
  static constexpr std::pair<TokenizerType, std::string_view> items[] = {{TokenizerType::AUTO, "auto"},
                                                                         {TokenizerType::SENTENCEPIECE, "sentencepiece"},
                                                                         {TokenizerType::BPE, "bpe"},
                                                                         {TokenizerType::GGUF, "gguf"}};
};
enum class ChatTemplate { AUTO, CHATML, LLAMA2, PLAIN };
template <> struct EnumNames<ChatTemplate> {
  static constexpr std::pair<ChatTemplate, std::string_view> items[] = {{ChatTemplate::AUTO, "auto"},
                                                                        {ChatTemplate::CHATML, "chatml"},
                                                                        {ChatTemplate::LLAMA2, "llama2"},
                                                                        {ChatTemplate::PLAIN, "plain"}};
};

struct TokenizerConfig {
  std::string path;  // "" = the model's own tokenizer
  TokenizerType type = TokenizerType::AUTO;
  ChatTemplate chat_template = ChatTemplate::AUTO;
  std::string assistant_prefix;  // e.g. "<think>" for R1-style prompts

  template <class V> void visit(V& v) {
    v("path", path, "Tokenizer file: a sentencepiece .model, a tokenizer.json, or a .gguf; empty = the model's own.");
    v("type", type, "Tokenizer kind; auto decides from the file.");
    v("chat_template", chat_template, "Prompt format for chat messages; auto picks the model's.");
    v("assistant_prefix", assistant_prefix, "Text that starts every assistant turn in the prompt, e.g. '<think>'.");
  }
};

}  // namespace grpo::config
