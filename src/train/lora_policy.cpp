#include "grpo/train/lora_policy.h"

#include <filesystem>

#include "grpo/model/lora.h"
#include "grpo/model/lora_peft.h"
#include "grpo/train/policy.h"
#include "grpo/util/log.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;

bool is_weights_dir(const std::string& p) {
  return !p.empty() && sfs::is_directory(p) && sfs::exists(sfs::path(p) / "model.safetensors") &&
         sfs::exists(sfs::path(p) / "config.yaml") && !sfs::exists(sfs::path(p) / "config.json");
}

}  // namespace

config::LoraConfig apply_config_lora(model::Transformer& model, const config::Config& cfg) {
  const std::string& path = cfg.model.path;
  if (is_weights_dir(path) && sfs::exists(sfs::path(path) / "adapter_config.json")) {
    // A LoRA stage's final/: save_lora_adapter_files wrote its adapters in PEFT's layout beside the
    // full weights (whether they began as new adapters or from lora.adapter_path).
    config::LoraConfig lc = model::read_peft_adapter_config(path);
    lc.init_lora_weights = cfg.lora.init_lora_weights;
    model::apply_lora(*model, lc);
    model::load_peft_adapter_weights(*model, path);
    log::info(str("lora: continuing the adapters of ", path));
    if (cfg.lora.enabled() && (cfg.lora.r != lc.r || cfg.lora.lora_alpha != lc.lora_alpha))
      log::warn(str("lora: r/lora_alpha of this config are ignored: ", path, " was trained with r=", lc.r,
                    " lora_alpha=", lc.lora_alpha));
    return lc;
  }
  if (!cfg.lora.adapter_path.empty()) {
    config::LoraConfig lc = model::read_peft_adapter_config(cfg.lora.adapter_path);
    lc.init_lora_weights = cfg.lora.init_lora_weights;
    model::apply_lora(*model, lc);
    model::load_peft_adapter_weights(*model, cfg.lora.adapter_path);
    log::info(str("lora: loaded the PEFT adapter ", cfg.lora.adapter_path));
    return lc;
  }
  if (!cfg.lora.enabled()) return cfg.lora;
  torch::manual_seed(static_cast<uint64_t>(cfg.trainer.seed));
  model::apply_lora(*model, cfg.lora);
  return cfg.lora;
}

model::NamedTensors checkpoint_weights(model::Transformer& model) {
  if (model::has_lora(*model)) return model::lora_weights(*model);
  return policy_weights(model);
}

void save_lora_adapter_files(model::Transformer& model, const config::LoraConfig& lora, const config::Config& cfg,
                             const std::string& dir) {
  if (!model::has_lora(*model)) return;
  std::string base = cfg.model.path;
  // A chain of stages: name the Hugging Face base of the first stage, not the previous final/.
  while (is_weights_dir(base)) base = config::load_config((sfs::path(base) / "config.yaml").string()).config.model.path;
  model::save_peft_adapter(*model, lora, base, dir);
}

}  // namespace grpo::train
