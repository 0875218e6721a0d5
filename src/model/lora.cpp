#include "grpo/model/lora.h"

#include <cmath>
#include <set>

#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::model {
namespace {

const std::vector<std::string>& all_linear_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names;
}

std::string leaf_name(const std::string& full) {
  auto dot = full.rfind('.');
  return dot == std::string::npos ? full : full.substr(dot + 1);
}

}  // namespace

LoraAdapterImpl::LoraAdapterImpl(int64_t in, int64_t out, int64_t r, double scaling_, double dropout_,
                                 config::LoraInit init, torch::Dtype dtype, torch::Device device)
    : scaling(scaling_), dropout(dropout_) {
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  A = register_parameter("A", torch::empty({r, in}, opts));
  B = register_parameter("B", torch::empty({out, r}, opts));
  torch::NoGradGuard ng;
  // PEFT reset_lora_parameters: True -> kaiming_uniform_(A, a=sqrt(5)) (nn.Linear's default,
  // U(-1/sqrt(in), 1/sqrt(in))), B = 0; "gaussian" -> A ~ N(0, std 1/r), B = 0; False -> both keep
  // nn.Linear's default init (kaiming_uniform_ with a=sqrt(5) over their own fan-in).
  switch (init) {
    case config::LoraInit::KAIMING:
      torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
      B.zero_();
      break;
    case config::LoraInit::GAUSSIAN:
      A.normal_(0.0, 1.0 / static_cast<double>(r));
      B.zero_();
      break;
    case config::LoraInit::RANDOM:
      torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
      torch::nn::init::kaiming_uniform_(B, std::sqrt(5.0));
      break;
  }
}

torch::Tensor LoraAdapterImpl::delta(const torch::Tensor& x) {
  auto h = x.to(A.scalar_type());
  if (dropout > 0 && is_training()) h = torch::dropout(h, dropout, /*train=*/true);
  // PEFT: lora_B(lora_A(dropout(x))) * scaling, in that order.
  auto d = torch::nn::functional::linear(torch::nn::functional::linear(h, A), B) * scaling;  // [..., out]
  return d.to(x.scalar_type());
}

torch::Tensor LoraAdapterImpl::delta_weight() const { return torch::matmul(B, A) * scaling; }

LoraAdapterImpl* lora_adapter(const torch::nn::LinearImpl& l) {
  for (const auto& c : l.children())  // empty for a plain Linear: cheap on every call
    if (auto* a = dynamic_cast<LoraAdapterImpl*>(c.get())) return a;
  return nullptr;
}

std::vector<std::string> lora_target_names(const std::vector<std::string>& target_modules) {
  std::set<std::string> out;
  for (const auto& t : target_modules) {
    if (t == "all-linear") {
      out.insert(all_linear_names().begin(), all_linear_names().end());
      continue;
    }
    bool known = false;
    for (const auto& n : all_linear_names()) known = known || n == t;
    GRPO_REQUIRE(known, "lora.target_modules: unknown module '", t,
                 "' (one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear)");
    out.insert(t);
  }
  std::vector<std::string> v;
  for (const auto& n : all_linear_names())
    if (out.count(n)) v.push_back(n);
  return v;
}

std::string apply_lora(TransformerImpl& model, const config::LoraConfig& cfg) {
  if (!cfg.enabled()) return "lora: off";
  GRPO_REQUIRE(!has_lora(model), "apply_lora: the model already has LoRA adapters");
  const auto targets = lora_target_names(cfg.target_modules);
  const std::set<std::string> target_set(targets.begin(), targets.end());
  const double r = cfg.r;
  const double scaling = cfg.use_rslora ? cfg.lora_alpha / std::sqrt(r) : cfg.lora_alpha / r;
  const torch::Dtype base = model.dtype();
  const torch::Dtype dtype = (base == torch::kBFloat16 || base == torch::kFloat16) ? torch::kFloat32 : base;
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  int64_t count = 0, trainable = 0;
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    if (!lin || !target_set.count(leaf_name(item.key()))) continue;
    // Routed MoE experts get none: transformers 5 holds them as fused 3D parameters, not
    // nn.Linear, so PEFT's target_modules never reaches them either (shared experts are Linears).
    if (item.key().find(".experts.") != std::string::npos) continue;
    const int64_t in = lin->weight.size(1), out = lin->weight.size(0);
    auto a = LoraAdapter(in, out, cfg.r, scaling, cfg.lora_dropout, cfg.init_lora_weights, dtype, model.device());
    lin->register_module("lora", a);
    trainable += a->A.numel() + a->B.numel();
    ++count;
  }
  GRPO_REQUIRE(count > 0, "lora.target_modules: no linear layer of the model matches");
  std::string names;
  for (const auto& t : targets) names += (names.empty() ? "" : ",") + t;
  std::string line = str("lora: r=", cfg.r, " alpha=", cfg.lora_alpha, cfg.use_rslora ? " rslora" : "", " scaling=", scaling,
                         " on ", count, " linears (", names, "), ", trainable, " trainable parameters, base frozen");
  log::info(line);
  return line;
}

std::vector<std::pair<std::string, LoraAdapterImpl*>> lora_adapters(TransformerImpl& model) {
  std::vector<std::pair<std::string, LoraAdapterImpl*>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get()))
      if (auto* a = lora_adapter(*lin)) out.emplace_back(item.key(), a);
  return out;
}

bool has_lora(TransformerImpl& model) { return !lora_adapters(model).empty(); }

NamedTensors lora_weights(TransformerImpl& model) {
  NamedTensors out;
  for (const auto& [name, a] : lora_adapters(model)) {
    out.emplace_back(name + ".lora.A", a->A);
    out.emplace_back(name + ".lora.B", a->B);
  }
  return out;
}

LoraDisabled::LoraDisabled(TransformerImpl& model) {
  for (const auto& [name, a] : lora_adapters(model)) {
    saved_.emplace_back(a, a->enabled);
    a->enabled = false;
  }
}

LoraDisabled::~LoraDisabled() {
  for (auto& [a, was] : saved_) a->enabled = was;
}

NamedTensors merged_weights(TransformerImpl& model) {
  torch::NoGradGuard ng;
  std::map<std::string, LoraAdapterImpl*> by_weight;
  for (const auto& [name, a] : lora_adapters(model)) by_weight[name + ".weight"] = a;
  NamedTensors out;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    if (p.key().find(".lora.") != std::string::npos) continue;
    auto it = by_weight.find(p.key());
    if (it == by_weight.end()) {
      out.emplace_back(p.key(), p.value());
    } else {
      const auto& w = p.value();
      out.emplace_back(p.key(), w + it->second->delta_weight().to(w.scalar_type()));
    }
  }
  for (const auto& b : model.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace grpo::model

namespace grpo::model {

void merge_and_unload(TransformerImpl& model) {
  torch::NoGradGuard ng;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto* lin = dynamic_cast<torch::nn::LinearImpl*>(item.value().get());
    LoraAdapterImpl* a = lin ? lora_adapter(*lin) : nullptr;
    if (!a) continue;
    lin->weight.add_(a->delta_weight().to(lin->weight.scalar_type()));
    lin->unregister_module("lora");
  }
}

}  // namespace grpo::model
