#include "grpo/train/eval_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "grpo/util/progress.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;

std::function<void(int64_t)>& write_hook() {
  static std::function<void(int64_t)> hook;
  return hook;
}

// The problems already in `path` (none when it does not exist). A last line without its newline,
// or one that does not parse, is what a kill in the middle of a write leaves: it is cut off.
std::map<int64_t, ProblemResult> read_done(const std::string& path, const std::string& settings, int64_t limit) {
  std::map<int64_t, ProblemResult> done;
  if (!sfs::exists(path)) return done;
  std::ifstream in(path, std::ios::binary);
  GRPO_REQUIRE(in.good(), path, ": cannot read the evaluation file to resume it");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  size_t pos = 0, good_end = 0;
  for (int64_t lineno = 1; pos < text.size(); ++lineno) {
    size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    nlohmann::json j;
    bool parsed = nl != std::string::npos;  // a line without its newline is torn
    if (parsed) {
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        parsed = false;
      }
    }
    if (!parsed) {
      GRPO_REQUIRE(last, path, ":", lineno, ": not a JSON line (only the last line may be torn by a kill)");
      log::warn(str(path, ":", lineno, ": cut off a torn last line (", line.size(), " bytes) before resuming"));
      break;
    }
    const std::string where = str(path, ":", lineno);
    GRPO_REQUIRE(j.is_object() && j.value("settings", std::string()) == settings, where,
                 ": written by an evaluation with other settings (model, data, config, -n, --seed or --temperature); "
                 "give another --out or delete the file");
    ProblemResult p;
    try {
      p = problem_from_json(j);
    } catch (const InputError& e) {
      throw InputError(str(where, ": ", e.what()));
    }
    GRPO_REQUIRE(p.index >= 0, where, ": negative problem index ", p.index);
    GRPO_REQUIRE(!done.count(p.index), where, ": problem ", p.index, " appears twice");
    if (p.index < limit) done.emplace(p.index, std::move(p));  // beyond a smaller --limit: kept, not counted
    good_end = nl + 1;
    pos = nl + 1;
  }
  if (good_end < text.size()) sfs::resize_file(path, good_end);
  return done;
}

}  // namespace

std::string eval_settings_key(const std::string& text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64 offset basis
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  std::ostringstream os;
  os << std::hex << std::setw(16) << std::setfill('0') << h;
  return os.str();
}

void set_eval_write_hook_for_testing(std::function<void(int64_t)> hook) { write_hook() = std::move(hook); }

EvalRunResult run_eval(Policy& policy, const data::Dataset& data, const config::Config& cfg,
                       const reward::RewardSet& rewards, const EvalRunOptions& opts) {
  GRPO_REQUIRE(opts.sampling.num_samples >= 1, "-n ", opts.sampling.num_samples, ": expected at least 1 sample");
  for (int k : opts.ks)
    GRPO_REQUIRE(k >= 1 && k <= opts.sampling.num_samples, "--k ", k, ": pass@k and maj@k need 1 <= k <= n = ",
                 opts.sampling.num_samples, " samples per problem (-n)");
  const int64_t total = opts.limit > 0 ? std::min<int64_t>(opts.limit, static_cast<int64_t>(data.size()))
                                       : static_cast<int64_t>(data.size());
  const int64_t chunk = opts.chunk > 0 ? opts.chunk : std::max(1, cfg.rollout.max_batch_size);
  EvalRunResult res;
  auto done = read_done(opts.out, opts.settings, total);
  res.resumed = static_cast<int64_t>(done.size());
  if (res.resumed > 0) log::info(str("eval: resuming ", opts.out, ": ", res.resumed, " of ", total, " problems done"));
  if (!sfs::path(opts.out).parent_path().empty()) sfs::create_directories(sfs::path(opts.out).parent_path());
  std::FILE* f = std::fopen(opts.out.c_str(), "ab");
  GRPO_REQUIRE(f, opts.out, ": cannot open for appending");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, &std::fclose);

  std::optional<util::StepProgress> bar;
  if (opts.progress) bar.emplace("eval", res.resumed, total);
  int64_t written = res.resumed, correct = 0;
  for (const auto& [i, p] : done) correct += p.correct;
  for (int64_t c0 = 0; c0 < total; c0 += chunk) {
    std::vector<int64_t> indices;
    bool missing = false;
    for (int64_t i = c0; i < std::min(total, c0 + chunk); ++i) {
      indices.push_back(i);
      missing = missing || !done.count(i);
    }
    if (!missing) continue;
    auto results = evaluate_problems(policy, data, indices, cfg, rewards, opts.sampling);
    for (auto& p : results) {
      if (done.count(p.index)) continue;  // written before the kill; this run recomputed it for the batch
      auto j = problem_to_json(p);
      j["settings"] = opts.settings;
      const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      GRPO_REQUIRE(std::fwrite(line.data(), 1, line.size(), f) == line.size() && std::fflush(f) == 0, opts.out,
                   ": write failed");
      correct += p.correct;
      ++written;
      ++res.evaluated;
      done.emplace(p.index, std::move(p));
      if (write_hook()) write_hook()(written);
      if (bar) bar->update(written, {{"accuracy", static_cast<double>(correct) / static_cast<double>(written)}});
    }
  }
  if (bar) bar->finish();
  std::vector<ProblemResult> all;
  all.reserve(done.size());
  for (auto& [i, p] : done) all.push_back(std::move(p));
  res.summary = summarize_eval(std::move(all), cfg.reward, opts.ks);
  return res;
}

}  // namespace grpo::train
