#include "grpo/model/lora_peft.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "grpo/model/lora.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::model {
namespace {

namespace sfs = std::filesystem;

std::string replace_suffix(const std::string& s, const std::string& from, const std::string& to) {
  GRPO_CHECK(s.ends_with(from), "adapter tensor name '", s, "' does not end with ", from);
  return s.substr(0, s.size() - from.size()) + to;
}

}  // namespace

std::string peft_adapter_key(const std::string& ours) {
  const std::string body = ours.ends_with(".lora.A") ? replace_suffix(ours, ".lora.A", ".lora_A.weight")
                                                      : replace_suffix(ours, ".lora.B", ".lora_B.weight");
  return "base_model.model.model." + body;
}

void save_peft_adapter(TransformerImpl& model, const config::LoraConfig& cfg, const std::string& base_model,
                       const std::string& dir) {
  auto adapters = lora_adapters(model);
  GRPO_REQUIRE(!adapters.empty(), "save_peft_adapter: the model has no LoRA adapters");
  sfs::create_directories(dir);
  NamedTensors peft;
  std::set<std::string> modules;
  for (const auto& [name, t] : lora_weights(model)) {
    peft.emplace_back(peft_adapter_key(name), t.detach());
    const auto linear = name.substr(0, name.size() - std::string(".lora.A").size());
    modules.insert(linear.substr(linear.rfind('.') + 1));
  }
  write_named((sfs::path(dir) / "adapter_model.safetensors").string(), peft, {{"format", "pt"}});
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "CAUSAL_LM"},
                      {"base_model_name_or_path", base_model},
                      {"r", cfg.r},
                      {"lora_alpha", cfg.lora_alpha},
                      {"lora_dropout", cfg.lora_dropout},
                      {"use_rslora", cfg.use_rslora},
                      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"use_dora", false},
                      {"inference_mode", true},
                      {"init_lora_weights", cfg.init_lora_weights == config::LoraInit::GAUSSIAN ? nlohmann::json("gaussian")
                                            : nlohmann::json(cfg.init_lora_weights == config::LoraInit::KAIMING)},
                      {"modules_to_save", nullptr},
                      {"layers_to_transform", nullptr},
                      {"rank_pattern", nlohmann::json::object()},
                      {"alpha_pattern", nlohmann::json::object()}};
  fs::atomic_write((sfs::path(dir) / "adapter_config.json").string(), j.dump(2) + "\n");
}

config::LoraConfig read_peft_adapter_config(const std::string& dir) {
  const auto path = (sfs::path(dir) / "adapter_config.json").string();
  GRPO_REQUIRE(sfs::exists(path), "lora.adapter_path: ", path, ": no such file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(str(path, ": ", e.what()));
  }
  GRPO_REQUIRE(j.value("peft_type", "") == "LORA", path, ": peft_type is not LORA");
  auto empty_or_null = [&](const char* k) {
    return !j.contains(k) || j[k].is_null() || (j[k].is_object() && j[k].empty()) || (j[k].is_boolean() && !j[k].get<bool>());
  };
  for (const char* k : {"fan_in_fan_out", "use_dora", "rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save"})
    GRPO_REQUIRE(empty_or_null(k), path, ": '", k, "' is set; grpo's LoRA supports plain per-layer-uniform adapters only");
  GRPO_REQUIRE(j.value("bias", "none") == "none", path, ": bias '", j.value("bias", ""), "' is not supported (none only)");
  config::LoraConfig c;
  c.r = j.at("r").get<int>();
  c.lora_alpha = j.at("lora_alpha").get<double>();
  c.lora_dropout = j.value("lora_dropout", 0.0);
  c.use_rslora = j.value("use_rslora", false);
  const auto& tm = j.at("target_modules");
  auto names = tm.is_string() ? std::vector<std::string>{tm.get<std::string>()} : tm.get<std::vector<std::string>>();
  // PEFT saves "all-linear" expanded to full module paths (model.layers.1.mlp.gate_proj): keep the
  // leaf names; load_peft_adapter_weights then refuses a file that adapts only some layers.
  std::set<std::string> leaves;
  for (const auto& n : names) leaves.insert(n.substr(n.rfind('.') == std::string::npos ? 0 : n.rfind('.') + 1));
  c.target_modules.assign(leaves.begin(), leaves.end());
  c.adapter_path = dir;
  return c;
}

void load_peft_adapter_weights(TransformerImpl& model, const std::string& dir) {
  const auto path = (sfs::path(dir) / "adapter_model.safetensors").string();
  safetensors::File file(path);
  NamedTensors into;
  std::set<std::string> wanted;
  for (const auto& [name, t] : lora_weights(model)) {
    into.emplace_back(peft_adapter_key(name), t);
    wanted.insert(peft_adapter_key(name));
  }
  for (const auto& info : file.tensors())
    GRPO_REQUIRE(info.name.find("lora_") == std::string::npos || wanted.count(info.name), path, ": adapter tensor '",
                 info.name, "' has no matching module in the model (target_modules or architecture differ)");
  read_named(file, into, ExtraTensors::REJECT);
}

}  // namespace grpo::model
