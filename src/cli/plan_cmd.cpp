// `grpo plan CONFIG [--nproc N] [--gpu-memory 80GiB] [key=value ...]`: per-rank memory of a GRPO
// step by part, for each sharding mode, whether it fits, and what to change when it does not.
// The estimator and its formulas: grpo/train/memory_plan.h.
#include <cstdio>
#include <iostream>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/train/memory_plan.h"
#include "grpo/util/error.h"

namespace grpo::cli {
namespace {

struct PlanArgs {
  std::string file;
  std::vector<std::string> overrides;
  int nproc = 1;
  std::string gpu_memory = "80GiB";
  std::string model_config;
  std::string device = "auto";  // auto: cpu when model.device is cpu, else gpu
  bool bytes = false;           // print bytes instead of GiB (tests compare exact figures)
};

std::string fmt_value(double bytes, bool raw) {
  char buf[64];
  if (raw) std::snprintf(buf, sizeof buf, "%.0f", bytes);
  else std::snprintf(buf, sizeof buf, "%.2f", bytes / double(1 << 30));
  return buf;
}

std::string fmt_count(int64_t n) {
  char buf[32];
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

void print_row(const std::string& label, const std::vector<std::string>& cells) {
  std::printf("%-34s", label.c_str());
  for (const auto& c : cells) std::printf(" %12s", c.c_str());
  std::printf("\n");
}

void print_table(const std::vector<train::MemoryPlan>& plans, const train::PlanTarget& t, bool raw) {
  auto row = [&](const std::string& label, auto get) {
    std::vector<std::string> cells;
    for (const auto& p : plans) cells.push_back(fmt_value(get(p), raw));
    print_row(label, cells);
  };
  std::vector<std::string> head;
  for (const auto& p : plans) head.push_back(train::sharding_name(p.mode));
  print_row(raw ? "part (bytes per rank)" : "part (GiB per rank)", head);
  row("parameters", [](const auto& p) { return p.states.params; });
  row("gradients", [](const auto& p) { return p.states.grads; });
  row("optimizer state (AdamW)", [](const auto& p) { return p.states.optimizer; });
  row("reference model", [](const auto& p) { return p.reference; });
  row("rollout KV cache", [](const auto& p) { return p.kv_cache; });
  row("rollout weight copy", [](const auto& p) { return p.rollout_copy; });
  row("rollout sampler buffers", [](const auto& p) { return p.rollout_buffers; });
  row("activations, no checkpointing", [](const auto& p) { return p.activations_plain; });
  row("activations, checkpointing", [](const auto& p) { return p.activations_ckpt; });
  row("activations as configured", [](const auto& p) { return p.activations; });
  row("peak during rollout", [](const auto& p) { return p.rollout_phase; });
  row("peak during update", [](const auto& p) { return p.update_phase; });
  row("peak", [](const auto& p) { return p.peak(); });
  if (t.memory > 0) {
    std::vector<std::string> fits;
    for (const auto& p : plans) fits.push_back(train::plan_fits(p.peak(), t) ? "yes" : "no");
    print_row(str("fits in ", fmt_value(t.memory, false), " GiB"), fits);
  }
}

void run_plan(const PlanArgs& a) {
  GRPO_REQUIRE(a.nproc >= 1, "--nproc ", a.nproc, ": expected >= 1");
  GRPO_REQUIRE(a.device == "auto" || a.device == "cpu" || a.device == "gpu", "--device ", a.device,
               ": expected auto, cpu or gpu");
  const config::Config cfg = config::load_config(a.file, a.overrides).config;
  const model::ModelSpec spec = train::plan_model_spec(cfg, a.model_config);
  train::PlanTarget t;
  t.world = a.nproc;
  t.cpu = a.device == "cpu" || (a.device == "auto" && cfg.model.device == "cpu");
  t.memory = a.gpu_memory.empty() ? 0.0 : train::parse_memory_size(a.gpu_memory);
  const auto pc = train::count_parameters(spec, cfg.lora);
  const auto plans = train::plan_memory(cfg, spec, t);
  std::printf("grpo plan: %s\n", a.file.c_str());
  std::printf("model: %s, %s parameters (%s trainable), largest block %s, embedding/head %s each\n",
              spec.architecture.c_str(), fmt_count(pc.total).c_str(), fmt_count(pc.trainable).c_str(),
              fmt_count(pc.largest_block).c_str(), fmt_count(pc.head).c_str());
  std::printf("ranks: %d on %s; model.dtype %s, trainer.bf16 %s, gradient checkpointing %s; configured sharding: %s\n",
              a.nproc, t.cpu ? "CPU" : "GPU", config::enum_name(cfg.model.dtype).data(),
              cfg.trainer.bf16 ? "on" : "off", cfg.trainer.gradient_checkpointing ? "on" : "off",
              train::sharding_name(cfg.distributed.sharding));
  print_table(plans, t, a.bytes);
  if (t.memory <= 0) return;
  const auto advice = train::advise(cfg, spec, t, cfg.distributed.sharding);
  const double peak = plans[static_cast<size_t>(cfg.distributed.sharding)].peak();
  if (advice.changes.empty())
    std::printf("verdict: fits (sharding %s, peak %s GiB of %s GiB)\n", train::sharding_name(cfg.distributed.sharding),
                fmt_value(peak, false).c_str(), fmt_value(t.memory, false).c_str());
  else {
    std::string changes;
    for (const auto& c : advice.changes) changes += (changes.empty() ? "" : " ") + c;
    std::printf("verdict: does not fit (sharding %s, peak %s GiB of %s GiB); %s: %s (peak %s GiB)\n",
                train::sharding_name(cfg.distributed.sharding), fmt_value(peak, false).c_str(),
                fmt_value(t.memory, false).c_str(), advice.fits ? "fits with" : "still too large with", changes.c_str(),
                fmt_value(advice.peak, false).c_str());
  }
}

}  // namespace

void register_plan_commands(CLI::App& app) {
  static PlanArgs args;
  auto* sub = app.add_subcommand("plan", "Per-GPU memory of a GRPO step by part for each sharding mode, and whether it fits");
  sub->add_option("file", args.file, "YAML config file")->required();
  sub->add_option("overrides", args.overrides, "key.path=value overrides (Hydra style), applied after the file");
  sub->add_option("--nproc", args.nproc, "Data-parallel processes (GPUs) the run uses")->capture_default_str();
  sub->add_option("--gpu-memory", args.gpu_memory, "Memory per GPU (80GiB, 80GB, 24GiB...); empty: no verdict")
      ->capture_default_str();
  sub->add_option("--model-config", args.model_config,
                  "A Hugging Face config.json describing the model (when model.path is not on disk)");
  sub->add_option("--device", args.device, "auto (cpu when model.device is cpu), cpu or gpu")->capture_default_str();
  sub->add_flag("--bytes", args.bytes, "Print bytes instead of GiB");
  sub->callback([] { run_plan(args); });
}

}  // namespace grpo::cli
