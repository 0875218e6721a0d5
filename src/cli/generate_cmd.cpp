// `grpo generate CONFIG --prompts FILE.jsonl --out FILE.jsonl`: samples completions with the rollout
// engine, to inspect a model before or after training.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "grpo/cli/commands.h"
#include "grpo/config/config.h"
#include "grpo/model/apply_kernels.h"
#include "grpo/model/model_loader.h"
#include "grpo/rollout/engine.h"
#include "grpo/tokenizer/chat_template.h"
#include "grpo/tokenizer/tokenizer.h"
#include "grpo/train/lora_policy.h"
#include "grpo/train/policy.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"

namespace grpo::cli {
namespace {

struct GenerateArgs {
  std::string config, prompts, out;
  std::vector<std::string> overrides;
  int num_generations = 1;
  uint64_t seed = 0;
  bool raw = false;
};

struct PromptRecord {
  std::string text;  // what the model sees (chat template applied unless --raw)
};

// model.path (a Hugging Face directory or .gguf file) or, when empty, a new model from the model:
// section with the tokenizer's vocabulary, initialised from `seed`.
model::Transformer open_model(const config::ModelConfig& cfg, const tok::Tokenizer& tokenizer, uint64_t seed) {
  auto mc = cfg;
  if (mc.path.empty() && mc.vocab_size == 0) mc.vocab_size = tokenizer.vocab_size();
  torch::manual_seed(seed);
  return model::build_model(mc);
}

std::vector<PromptRecord> read_prompts(const std::string& path, const tok::ChatFormatter& chat, bool raw) {
  std::ifstream in(path);
  GRPO_REQUIRE(in.good(), path, ": cannot open the prompts file");
  std::vector<PromptRecord> out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", lineno);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw InputError(str(where, ": not valid JSON (", e.what(), ")"));
    }
    GRPO_REQUIRE(j.is_object(), where, ": expected an object {\"prompt\": ...} or {\"messages\": [...]}");
    std::vector<tok::ChatMessage> msgs;
    if (j.contains("prompt")) {
      GRPO_REQUIRE(j["prompt"].is_string(), where, ": \"prompt\" must be a string");
      if (raw) {
        out.push_back({j["prompt"].get<std::string>()});
        continue;
      }
      msgs.push_back({"user", j["prompt"].get<std::string>()});
    } else if (j.contains("messages")) {
      GRPO_REQUIRE(!raw, where, ": --raw takes {\"prompt\": text} records, not messages");
      GRPO_REQUIRE(j["messages"].is_array(), where, ": \"messages\" must be a list of {role, content}");
      for (size_t k = 0; k < j["messages"].size(); ++k) {
        const auto& m = j["messages"][k];
        GRPO_REQUIRE(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                         m["content"].is_string(),
                     where, ": messages[", k, "] must be {\"role\": string, \"content\": string}");
        msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    } else {
      throw InputError(str(where, ": expected a \"prompt\" or a \"messages\" key"));
    }
    try {
      out.push_back({chat.render(msgs)});
    } catch (const InputError& e) {
      throw InputError(str(where, ": ", e.what()));
    }
  }
  GRPO_REQUIRE(!out.empty(), path, ": no prompts");
  return out;
}

// A progress bar on a terminal; a plain line every 10% otherwise (logs, pipes).
class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO)), t0_(std::chrono::steady_clock::now()) {}
  void operator()(int64_t done, int64_t total) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (tty_) {
      const int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
      std::fprintf(stderr, "\r[%s%s] %lld/%lld completions %.1fs", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), s);
      if (done == total) std::fprintf(stderr, "\n");
    } else if (done * 10 / std::max<int64_t>(total, 1) > last_decile_ || (done == total && last_decile_ < 10)) {
      last_decile_ = done * 10 / std::max<int64_t>(total, 1);
      std::fprintf(stderr, "generate: %lld/%lld completions, %.1fs\n", static_cast<long long>(done),
                   static_cast<long long>(total), s);
    }
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
  int64_t last_decile_ = 0;
};

void run_generate(const GenerateArgs& a) {
  GRPO_REQUIRE(a.num_generations >= 1, "--num-generations = ", a.num_generations, ": expected at least 1");
  auto loaded = config::load_config(a.config, a.overrides);
  const auto& cfg = loaded.config;
  if (cfg.trainer.num_threads > 0) torch::set_num_threads(cfg.trainer.num_threads);  // as grpo train does
  // A trained policy (a stage's final/ or a checkpoint) loads like training does: its own
  // config.yaml rebuilds the architecture and names the tokenizer (unless tokenizer.path is set).
  train::Policy policy;
  std::unique_ptr<tok::Tokenizer> own_tokenizer;
  std::unique_ptr<tok::ChatFormatter> chat;
  model::Transformer model{nullptr};
  const tok::Tokenizer* tokenizer = nullptr;
  if (is_grpo_weights_dir(cfg.model.path)) {
    policy = train::load_policy(cfg);
    tokenizer = policy.tokenizer.get();
    chat = std::move(policy.chat);
    model = policy.model;
  } else {
    own_tokenizer = tok::load_tokenizer(cfg.tokenizer, cfg.model.path);
    tokenizer = own_tokenizer.get();
    chat = std::make_unique<tok::ChatFormatter>(cfg.tokenizer.chat_template, *tokenizer, cfg.tokenizer.assistant_prefix);
  }
  auto records = read_prompts(a.prompts, *chat, a.raw);

  if (!model) model = open_model(cfg.model, *tokenizer, a.seed);
  model::apply_kernels(*model, cfg.kernels);  // the same kernels as the trainer's rollout
  train::apply_config_lora(model, cfg);       // a LoRA final/ or lora.adapter_path: generate with the adapters
  model->eval();
  log::info(str("generate: ", records.size(), " prompts x ", a.num_generations, " completions on ", model->device().str(),
                ", tokenizer ", tokenizer->describe()));

  std::vector<std::vector<int64_t>> ids;
  const auto& sp = tokenizer->special();
  for (const auto& r : records) {
    std::vector<int64_t> row;
    auto enc = tokenizer->encode(r.text);
    if (sp.add_bos && sp.bos && (enc.empty() || enc[0] != *sp.bos)) row.push_back(*sp.bos);
    row.insert(row.end(), enc.begin(), enc.end());
    ids.push_back(std::move(row));
  }
  rollout::RolloutEngine engine(model, *tokenizer, cfg.rollout);
  engine.set_bf16(cfg.trainer.bf16);  // as the trainer's rollout: bf16 on a CPU model
  Progress progress;
  engine.set_progress_callback([&](int64_t d, int64_t t) { progress(d, t); });
  auto completions = engine.generate(ids, a.num_generations, a.seed);

  std::string out;
  for (size_t k = 0; k < completions.size(); ++k) {
    const auto& c = completions[k];
    nlohmann::json j;
    j["prompt_index"] = c.prompt_index;
    j["generation"] = k % a.num_generations;
    j["prompt"] = records[c.prompt_index].text;
    j["completion"] = c.text;
    j["finish_reason"] = std::string(rollout::finish_reason_name(c.finish_reason));
    j["prompt_length"] = c.prompt_length;
    j["completion_length"] = c.completion_length;
    j["token_ids"] = c.token_ids;
    j["logprobs"] = c.logprobs;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  fs::atomic_write(a.out, out);
  const auto& st = engine.last_stats();
  log::info(str("generate: wrote ", completions.size(), " completions to ", a.out, "; ", st.prompt_tokens,
                " prompt tokens prefilled in ", st.prefill_seconds, " s, ", st.completion_tokens, " tokens in ",
                st.decode_seconds, " s (", st.completion_tokens / std::max(st.decode_seconds, 1e-9), " tokens/s)"));
}

}  // namespace

void register_generate_commands(CLI::App& app) {
  static GenerateArgs args;
  auto* g = app.add_subcommand("generate", "Sample completions for prompts with the rollout engine (JSONL in, JSONL out)");
  g->add_option("config", args.config, "YAML config (model:, tokenizer:, rollout: sections)")->required();
  g->add_option("overrides", args.overrides, "key.path=value overrides, applied after the file");
  g->add_option("--prompts", args.prompts, "JSONL: {\"prompt\": text} or {\"messages\": [{role, content}, ...]} per line")
      ->required();
  g->add_option("--out", args.out, "JSONL written with one completion per line")->required();
  g->add_option("-n,--num-generations", args.num_generations, "completions per prompt");
  g->add_option("--seed", args.seed, "sampling seed (also initialises a new model)");
  g->add_flag("--raw", args.raw, "feed {\"prompt\": text} as is, without the chat template");
  g->callback([] { run_generate(args); });
}

}  // namespace grpo::cli
