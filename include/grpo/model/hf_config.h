#pragma once
// Hugging Face config.json <-> ModelSpec for the architectures of arch_table.h. Reads both the
// transformers 4.x keys (rope_theta, rope_scaling) and the 5.x ones (rope_parameters).
#include <nlohmann/json.hpp>
#include <string>

#include "grpo/model/model_spec.h"

namespace grpo::model {

/// Parses a config.json object. `path` names the file in errors. Throws grpo::InputError naming
/// the file and key for: no/unknown "architectures", a missing required key, a key of the wrong
/// type, or a feature we do not implement (hidden_act other than silu, mlp_bias, rope types other
/// than default/llama3, Qwen sliding-window layers).
ModelSpec spec_from_hf_config(const nlohmann::json& cfg, const std::string& path);

/// Reads and parses `path` (a config.json file). Throws grpo::InputError as above, or for bad JSON.
ModelSpec read_hf_config(const std::string& path);

/// The config.json that transformers needs to rebuild `spec` (both rope key styles written).
/// `dtype` is the stored weight dtype name ("float32", "bfloat16", "float16"). Throws
/// grpo::InputError when the spec has no HF equivalent (sigmoid routing, DeepSeek-style dense bottom
/// layers, ungated shared experts).
nlohmann::ordered_json hf_config_from_spec(const ModelSpec& spec, const std::string& dtype);

}  // namespace grpo::model
