#pragma once
// The policy a run trains: the model, its tokenizer and chat formatter, resolved from the config.
// model.path may be a Hugging Face directory (config.json + safetensors), a .gguf file, a grpo
// checkpoint directory (checkpoints/checkpoint-N, or a stage's final/ directory), or empty (a new
// model from the model: section, vocabulary from the tokenizer).
#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/model/transformer.h"
#include "grpo/tokenizer/chat_template.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/train/checkpoint.h"

namespace grpo::train {

struct Policy {
  model::Transformer model{nullptr};
  std::unique_ptr<tok::Tokenizer> tokenizer;
  std::unique_ptr<tok::ChatFormatter> chat;
  std::vector<int64_t> eos_ids;  // every id that ends a completion (tokenizer's and model's)
};

/// Loads or creates the policy of `cfg` on its device, in model.dtype. A new model is initialised
/// from the global torch RNG seeded with trainer.seed. Throws grpo::InputError naming the path and
/// the problem when a file is missing or malformed, or when a new model has no tokenizer.
Policy load_policy(const config::Config& cfg);

/// The policy's weights by name (parameters, then buffers such as MoE routing biases), in a fixed
/// order: what checkpoints save and load.
NamedTensors policy_weights(model::Transformer& model);

/// A frozen copy of `model` (same spec, same weights, requires_grad off): the reference policy.
model::Transformer clone_frozen(model::Transformer& model);

/// Copies every weight of `src` into `dst` (same spec); used to re-sync the reference model.
void copy_weights(model::Transformer& dst, model::Transformer& src);

/// Writes the policy as a grpo weights directory: model.safetensors (our parameter names),
/// config.yaml (the run's resolved config, model.path cleared so it rebuilds from scratch) and
/// the tokenizer path recorded in it. load_policy() accepts the directory as model.path.
void save_policy_dir(Policy& policy, const config::Config& cfg, const std::string& dir);

/// Renders one chat prompt and encodes it (bos first when the tokenizer asks for one).
std::vector<int64_t> encode_prompt(const Policy& policy, const std::vector<tok::ChatMessage>& messages);

}  // namespace grpo::train
