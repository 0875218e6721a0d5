// The model `grpo plan` sizes, found without loading any weight (memory_plan.h, plan_model_spec).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "grpo/config/config.h"
#include "grpo/model/gguf_weights.h"
#include "grpo/model/hf_config.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/train/memory_plan.h"
#include "grpo/util/error.h"

namespace grpo::train {
namespace fs = std::filesystem;

namespace {

// The vocabulary of a model built from the model: section (policy.cpp takes the tokenizer's).
int vocab_for_new_model(const config::Config& cfg) {
  if (cfg.model.vocab_size > 0) return cfg.model.vocab_size;
  if (!cfg.tokenizer.path.empty() && fs::exists(cfg.tokenizer.path))
    return static_cast<int>(tok::load_tokenizer(cfg.tokenizer)->vocab_size());
  GRPO_REQUIRE(cfg.task.tokenizer_vocab_size > 0,
               "model.vocab_size is 0 and there is no tokenizer to take it from (tokenizer.path '", cfg.tokenizer.path,
               "' does not exist, task.tokenizer_vocab_size is 0): set model.vocab_size for the plan");
  return cfg.task.tokenizer_vocab_size;
}

}  // namespace

model::ModelSpec plan_model_spec(const config::Config& cfg, const std::string& model_config) {
  if (!model_config.empty()) return model::read_hf_config(model_config);
  const std::string& path = cfg.model.path;
  if (path.empty()) {
    config::ModelConfig mc = cfg.model;
    mc.vocab_size = vocab_for_new_model(cfg);
    return model::spec_from_config(mc);
  }
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "config.json"))
    return model::read_hf_config((fs::path(path) / "config.json").string());
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "config.yaml")) {  // a grpo weights directory
    config::Config inner = config::load_config((fs::path(path) / "config.yaml").string()).config;
    GRPO_REQUIRE(inner.model.path != path, path, "/config.yaml: model.path points to itself");
    return plan_model_spec(inner, "");
  }
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".gguf")
    return model::spec_from_gguf(gguf::File(path));
  const std::string known = known_model_config_json(path);
  GRPO_REQUIRE(!known.empty(), "model.path '", path,
               "' has no config.json here and is not a model grpo knows the shape of: pass its config.json with "
               "--model-config FILE");
  return model::spec_from_hf_config(nlohmann::json::parse(known), "built-in shape of " + path);
}

}  // namespace grpo::train
