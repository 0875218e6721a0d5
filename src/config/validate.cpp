// Cross-field rules: everything a single field's type and range cannot say.
#include <regex>

#include "grpo/config/config.h"
#include "grpo/util/cpu_features.h"
#include "grpo/util/log.h"

namespace grpo::config {
namespace {

[[noreturn]] void bad(const Provenance& prov, const std::string& key, const std::string& msg) {
  // A key left at its default has no location: point at the nearest key set beside it or above
  // it (reward.functions.1.buffer_length -> the reward.functions.1 entry), so the message still
  // names the place in the file to change.
  SourceLocation where;
  for (std::string k = key; !k.empty(); k = k.substr(0, k.find_last_of('.') == std::string::npos ? 0 : k.find_last_of('.'))) {
    auto it = prov.find(k);
    if (it != prov.end()) {
      where = it->second;
      break;
    }
    auto sib = prov.lower_bound(k + ".");  // the first key set inside k
    if (k != key && sib != prov.end() && sib->first.rfind(k + ".", 0) == 0) {
      where = sib->second;
      break;
    }
  }
  throw ConfigError(ConfigErrorKind::BAD_VALUE, key, where, msg);
}

}  // namespace

void validate(const Config& c, const Provenance& prov) {
  const auto& m = c.model;
  static const std::regex device_re("^(auto|cpu|cuda|cuda:[0-9]+)$");
  if (!std::regex_match(m.device, device_re))
    bad(prov, "model.device", "model.device must be auto, cpu, cuda or cuda:N, got '" + m.device + "'");
  if (m.num_attention_heads % m.num_key_value_heads != 0)
    bad(prov, "model.num_key_value_heads",
        str("model.num_key_value_heads (", m.num_key_value_heads, ") must divide model.num_attention_heads (",
            m.num_attention_heads, ")"));
  if (m.head_dim == 0 && m.hidden_size % m.num_attention_heads != 0)
    bad(prov, "model.hidden_size",
        str("model.hidden_size (", m.hidden_size, ") must be a multiple of model.num_attention_heads (",
            m.num_attention_heads, ") when model.head_dim is 0"));
  if (m.moe.num_experts > 0 && m.moe.num_experts_per_tok > m.moe.num_experts)
    bad(prov, "model.moe.num_experts_per_tok",
        str("model.moe.num_experts_per_tok (", m.moe.num_experts_per_tok, ") must be <= model.moe.num_experts (",
            m.moe.num_experts, ")"));
  if (m.moe.num_experts > 0 && m.moe.first_k_dense_replace >= m.num_hidden_layers)
    bad(prov, "model.moe.first_k_dense_replace",
        str("model.moe.first_k_dense_replace (", m.moe.first_k_dense_replace,
            ") must be < model.num_hidden_layers (", m.num_hidden_layers, ") for a MoE model"));
  if (m.path.empty() && c.data.max_prompt_length + c.rollout.max_completion_length > m.max_position_embeddings)
    bad(prov, "rollout.max_completion_length",
        str("data.max_prompt_length + rollout.max_completion_length (", c.data.max_prompt_length, " + ",
            c.rollout.max_completion_length, ") must be <= model.max_position_embeddings (", m.max_position_embeddings,
            ")"));

  // kernels.fp8 must never fall back silently to bf16: refuse it wherever it cannot run. What the
  // config knows: the device and this build; a pre-Hopper GPU is refused when the model is applied
  // (model/apply_kernels.cpp), once the device is known.
  if (c.kernels.fp8) {
#ifdef GRPO_BUILD_HAS_CUDA_KERNELS
    constexpr bool cuda_build = true;
#else
    constexpr bool cuda_build = false;
#endif
    if (m.device == "cpu")
      bad(prov, "kernels.fp8", "kernels.fp8: FP8 linears need a CUDA sm_90 GPU, but model.device is cpu; set kernels.fp8: false");
    else if (!cuda_build)
      bad(prov, "kernels.fp8",
          "kernels.fp8: this build has no CUDA kernels (configured without nvcc or with GRPO_CUDA=OFF); set kernels.fp8: false");
  }

  // lora.target_modules: PEFT module names the model layer knows (model/lora.cpp).
  for (size_t i = 0; i < c.lora.target_modules.size(); ++i) {
    static const std::regex known("q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|all-linear");
    if (!std::regex_match(c.lora.target_modules[i], known))
      bad(prov, str("lora.target_modules.", i),
          str("lora.target_modules: unknown module '", c.lora.target_modules[i],
              "' (one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear)"));
  }
  if (c.lora.enabled() && c.grpo.ref_model_sync_steps > 0)
    bad(prov, "grpo.ref_model_sync_steps",
        "grpo.ref_model_sync_steps > 0 with lora.r > 0: the LoRA reference is the base model (adapters off), which "
        "never changes; set grpo.ref_model_sync_steps: 0");

  const auto& t = c.trainer;
  // trainer.bf16 on a CPU without bf16 instructions: correct (oneDNN emulates bf16) but slower
  // than float32, so a warning, not an error. model.device auto lands on the CPU without a GPU.
  if (t.bf16 && m.device.rfind("cuda", 0) != 0 && util::bf16_slower_than_float32(util::bf16_path()))
    log::warn_once("bf16-emulated",
                   "trainer.bf16: this CPU has no avx512_bf16/amx_bf16 (bf16 path: emulated): a bf16 run on the CPU "
                   "would be slower than float32; set trainer.bf16: false unless the model runs on a GPU");
  int64_t completions = int64_t(t.per_device_train_batch_size) * t.gradient_accumulation_steps;
  if (completions % c.grpo.num_generations != 0)
    bad(prov, "trainer.per_device_train_batch_size",
        str("trainer.per_device_train_batch_size * trainer.gradient_accumulation_steps (", completions,
            ") must be a multiple of grpo.num_generations (", c.grpo.num_generations,
            ") so that every group of completions is whole"));

  for (const auto& [key, value] : {std::pair{"logging.level", c.logging.level}, {"logging.file_level", c.logging.file_level}}) {
    try {
      log::parse_level(value);
    } catch (const InputError&) {
      bad(prov, key, std::string(key) + " must be one of trace, debug, info, warn, error, off; got '" + value + "'");
    }
  }
  for (size_t i = 0; i < c.logging.report_to.size(); ++i) {
    const auto& r = c.logging.report_to[i];
    if (r != "jsonl" && r != "tensorboard")
      bad(prov, "logging.report_to." + std::to_string(i), "logging.report_to entries must be jsonl or tensorboard, got '" + r + "'");
  }
  for (size_t i = 0; i < c.reward.functions.size(); ++i) {
    const auto& f = c.reward.functions[i];
    if (f.name == RewardKind::LENGTH && f.length.buffer_length > f.length.max_length)
      bad(prov, "reward.functions." + std::to_string(i) + ".buffer_length",
          str("reward.functions.", i, ".buffer_length (", f.length.buffer_length, prov.count("reward.functions." + std::to_string(i) + ".buffer_length") ? "" : ", the default",
              ") must be <= max_length (", f.length.max_length, ")"));
  }
}

}  // namespace grpo::config
