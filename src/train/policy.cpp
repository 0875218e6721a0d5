#include "grpo/train/policy.h"

#include <algorithm>
#include <filesystem>

#include "grpo/model/model_loader.h"
#include "grpo/model/weights_io.h"
#include "grpo/train/checkpoint.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"
#include "grpo/util/safetensors.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;

bool is_weights_dir(const sfs::path& p) {
  // model.safetensors (final/, an unsharded checkpoint) or shards.json (a sharded checkpoint).
  return sfs::is_directory(p) && (sfs::exists(p / "model.safetensors") || sfs::exists(p / "shards.json")) &&
         sfs::exists(p / "config.yaml") && !sfs::exists(p / "config.json");
}

}  // namespace

NamedTensors policy_weights(model::Transformer& model) {
  NamedTensors out;
  for (const auto& p : model->named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : model->named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value());
  return out;
}

Policy load_policy(const config::Config& cfg) {
  Policy p;
  const std::string& path = cfg.model.path;
  // Named by its key here: otherwise the first to notice is the tokenizer, taken from the model path.
  GRPO_REQUIRE(path.empty() || sfs::exists(path), "model.path: ", path, ": no such file or directory");
  torch::Device device = model::resolve_device(cfg.model.device);
  if (!path.empty() && is_weights_dir(path)) {
    // A grpo weights directory: rebuild from its own resolved config, then load its weights.
    auto inner = config::load_config((sfs::path(path) / "config.yaml").string()).config;
    GRPO_REQUIRE(inner.model.path != path, path, "/config.yaml: model.path points to itself");
    inner.model.device = cfg.model.device;
    inner.model.dtype = cfg.model.dtype;
    if (!cfg.tokenizer.path.empty()) inner.tokenizer = cfg.tokenizer;
    else inner.tokenizer.chat_template = cfg.tokenizer.chat_template, inner.tokenizer.assistant_prefix = cfg.tokenizer.assistant_prefix;
    p = load_policy(inner);
    // Written by save_policy_dir or save_checkpoint.
    read_weights(path, policy_weights(p.model));
    log::info(str("loaded policy weights from ", path));
    return p;
  }

  p.tokenizer = tok::load_tokenizer(cfg.tokenizer, path);
  if (path.empty()) {
    config::ModelConfig mc = cfg.model;
    if (mc.vocab_size == 0) mc.vocab_size = p.tokenizer->vocab_size();
    GRPO_REQUIRE(mc.vocab_size >= p.tokenizer->vocab_size(), "model.vocab_size (", mc.vocab_size,
                 ") is smaller than the tokenizer's vocabulary (", p.tokenizer->vocab_size(), ")");
    auto spec = model::spec_from_config(mc);
    if (!p.tokenizer->special().eos.empty()) spec.eos_token_id = p.tokenizer->special().eos.front();
    if (p.tokenizer->special().bos) spec.bos_token_id = *p.tokenizer->special().bos;
    torch::manual_seed(static_cast<uint64_t>(cfg.trainer.seed));
    p.model = model::Transformer(spec);
  } else {
    p.model = model::load_model(path);  // Hugging Face directory or .gguf file
  }
  p.model->to(device, model::to_torch_dtype(cfg.model.dtype));
  p.chat = std::make_unique<tok::ChatFormatter>(cfg.tokenizer.chat_template, *p.tokenizer, cfg.tokenizer.assistant_prefix);
  for (int32_t id : p.tokenizer->special().eos) p.eos_ids.push_back(id);
  if (p.model->spec().eos_token_id >= 0) p.eos_ids.push_back(p.model->spec().eos_token_id);
  std::sort(p.eos_ids.begin(), p.eos_ids.end());
  p.eos_ids.erase(std::unique(p.eos_ids.begin(), p.eos_ids.end()), p.eos_ids.end());
  GRPO_REQUIRE(p.model->spec().vocab_size >= p.tokenizer->vocab_size(), "the model's vocabulary (",
               p.model->spec().vocab_size, ") is smaller than the tokenizer's (", p.tokenizer->vocab_size(), ")");
  return p;
}

model::Transformer clone_frozen(model::Transformer& src) {
  model::Transformer copy(src->spec());
  copy->to(src->device(), src->dtype());
  copy_weights(copy, src);
  for (auto& prm : copy->parameters()) prm.set_requires_grad(false);
  copy->eval();
  return copy;
}

void copy_weights(model::Transformer& dst, model::Transformer& src) {
  torch::NoGradGuard ng;
  auto d = policy_weights(dst);
  auto s = policy_weights(src);
  GRPO_CHECK(d.size() == s.size(), "models differ in their weights");
  for (size_t i = 0; i < d.size(); ++i) {
    GRPO_CHECK(d[i].first == s[i].first, d[i].first, " vs ", s[i].first);
    d[i].second.copy_(s[i].second);
  }
}

void save_policy_dir(Policy& policy, const config::Config& cfg, const std::string& dir) {
  sfs::create_directories(dir);
  model::write_named((sfs::path(dir) / "model.safetensors").string(), policy_weights(policy.model), {{"format", "grpo"}});
  // The config that rebuilds the architecture: the run's own, or, when the run itself started from
  // a weights directory, that directory's (so chains of stages never point at each other).
  config::Config c = is_weights_dir(cfg.model.path)
                         ? config::load_config((sfs::path(cfg.model.path) / "config.yaml").string()).config
                         : cfg;
  // c.model.path is now empty (from scratch: record the vocab size taken from the tokenizer) or a
  // Hugging Face directory (its weights are loaded, then overwritten by ours).
  if (c.model.path.empty()) c.model.vocab_size = policy.model->spec().vocab_size;
  config::write_resolved_config(c, dir);
}

std::vector<int64_t> encode_prompt(const Policy& policy, const std::vector<tok::ChatMessage>& messages) {
  std::string text = policy.chat->render(messages, /*add_generation_prompt=*/true);
  auto ids = policy.tokenizer->encode(text);
  std::vector<int64_t> out;
  out.reserve(ids.size() + 1);
  if (policy.tokenizer->special().add_bos && policy.tokenizer->special().bos &&
      (ids.empty() || ids.front() != *policy.tokenizer->special().bos))
    out.push_back(*policy.tokenizer->special().bos);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

}  // namespace grpo::train
