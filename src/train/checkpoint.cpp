#include "grpo/train/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <ftw.h>
#include <nettle/sha2.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"
#include "grpo/dist/distributed.h"
#include "grpo/train/shard_io.h"
#include "grpo/util/safetensors.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;
using nlohmann::json;

constexpr int kFormatVersion = 1;
const char* const kComplete = "COMPLETE";
const char* const kManifest = "manifest.json";

std::string ckpt_root(const std::string& output_dir) { return (sfs::path(output_dir) / "checkpoints").string(); }

std::string ckpt_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "checkpoint-%08lld", static_cast<long long>(step));
  return buf;
}

// Step of a directory named checkpoint-<digits>, or -1.
int64_t step_of(const std::string& name) {
  const std::string prefix = "checkpoint-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 18) return -1;
  int64_t v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRPO_REQUIRE(fd >= 0, "checkpoint: cannot open '", path, "' to fsync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  GRPO_REQUIRE(rc == 0, "checkpoint: cannot fsync '", path, "'");
}

SaveHook& save_hook() {
  static SaveHook hook;
  return hook;
}

json state_to_json(const TrainState& s) {
  return json{{"format_version", kFormatVersion},
              {"step", s.step},
              {"stage", s.stage},
              {"data", {{"epoch", s.data.epoch}, {"index", s.data.index}}},
              {"scheduler", s.scheduler},
              {"extra", s.extra}};
}

void save_rng(const std::string& path, const std::vector<RngState>& rng) {
  torch::serialize::OutputArchive ar;
  std::vector<int64_t> meta{static_cast<int64_t>(rng.size())};
  for (const auto& r : rng) meta.push_back(static_cast<int64_t>(r.cuda.size()));
  ar.write("meta", torch::tensor(meta, torch::kInt64));
  for (size_t k = 0; k < rng.size(); ++k) {
    if (rng[k].cpu.defined()) ar.write(grpo::str("rank", k, ".cpu"), rng[k].cpu);
    for (size_t d = 0; d < rng[k].cuda.size(); ++d) ar.write(grpo::str("rank", k, ".cuda", d), rng[k].cuda[d]);
  }
  ar.save_to(path);
}

std::vector<RngState> load_rng(const std::string& path) {
  torch::serialize::InputArchive ar;
  ar.load_from(path);
  torch::Tensor meta;
  ar.read("meta", meta);
  const auto m = meta.to(torch::kInt64).contiguous();
  const int64_t* p = m.data_ptr<int64_t>();
  std::vector<RngState> out(static_cast<size_t>(p[0]));
  for (size_t k = 0; k < out.size(); ++k) {
    torch::Tensor cpu;
    if (ar.try_read(grpo::str("rank", k, ".cpu"), cpu)) out[k].cpu = cpu;
    for (int64_t d = 0; d < p[k + 1]; ++d) {
      torch::Tensor t;
      ar.read(grpo::str("rank", k, ".cuda", d), t);
      out[k].cuda.push_back(t);
    }
  }
  return out;
}

// Removes a directory tree, logging instead of throwing (cleanup must not fail a save). Not
// std::filesystem::remove_all: libtorch.so exports its own (older libstdc++) copy of it, which the
// dynamic linker binds instead and which crashes (null call) in a process linked with LibTorch.
void remove_quietly(const sfs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return;  // already gone
  auto rm = [](const char* f, const struct stat*, int, struct FTW*) { return ::remove(f); };
  if (::nftw(p.c_str(), rm, 16, FTW_DEPTH | FTW_PHYS) != 0)
    log::warn(grpo::str("checkpoint: could not remove '", p.string(), "': ", std::strerror(errno)));
}

}  // namespace

void set_save_hook_for_testing(SaveHook hook) { save_hook() = std::move(hook); }

std::string sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  GRPO_REQUIRE(f, "cannot read '", path, "'");
  sha256_ctx ctx;
  sha256_init(&ctx);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = f.gcount();
    if (n > 0) sha256_update(&ctx, static_cast<size_t>(n), reinterpret_cast<const uint8_t*>(buf.data()));
  }
  GRPO_REQUIRE(f.eof(), "error reading '", path, "'");
  uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) out += {hex[b >> 4], hex[b & 15]};
  return out;
}

RngState capture_rng_state() {
  RngState s;
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    s.cpu = gen.get_state();
  }
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d) {
      at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<int8_t>(d)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.cuda.push_back(gen.get_state());
    }
  }
  return s;
}

void restore_rng_state(const RngState& s) {
  if (s.cpu.defined()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.cpu);
  }
  if (s.cuda.empty()) return;
  const auto n = torch::cuda::is_available() ? static_cast<size_t>(torch::cuda::device_count()) : 0;
  GRPO_REQUIRE(s.cuda.size() <= n, "checkpoint: RNG state has ", s.cuda.size(), " CUDA device(s) but ", n,
               " are visible");
  for (size_t d = 0; d < s.cuda.size(); ++d) {
    at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<int8_t>(d)));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.cuda[d]);
  }
}

namespace {

// One string per rank (a single process: its own).
std::vector<std::string> gather(dist::Distributed* d, const std::string& s) {
  if (!d || d->world_size() <= 1) return {s};
  return d->all_gather_string(s);
}

// The first rank's error among gathered statuses ({"error": ...} or anything else), or "".
std::string first_error(const std::vector<std::string>& statuses) {
  for (size_t r = 0; r < statuses.size(); ++r) {
    const json j = json::parse(statuses[r]);
    if (j.contains("error")) return grpo::str("rank ", r, ": ", j["error"].get<std::string>());
  }
  return "";
}

std::string describe(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

// Rank 0, after every rank's shard files are in `tmp`: the metadata and the small files, manifest,
// marker, then the rename that publishes the checkpoint, `latest`, and pruning.
void publish(const sfs::path& root, const sfs::path& tmp, const std::string& name, const TrainState& state,
             const nlohmann::json& shards_meta, const std::vector<WrittenShardFile>& shard_files, int keep_last,
             const std::string& output_dir) {
  json manifest{{"format_version", kFormatVersion}, {"step", state.step}, {"files", json::object()}};
  for (const auto& f : shard_files) manifest["files"][f.file] = {{"sha256", f.sha256}, {"bytes", f.bytes}};
  std::vector<std::string> files;
  fs::atomic_write((tmp / kShardsMeta).string(), shards_meta.dump(1) + "\n");
  files.push_back(kShardsMeta);
  if (!state.rng.empty()) {
    save_rng((tmp / "rng.pt").string(), state.rng);
    fsync_file((tmp / "rng.pt").string());
    files.push_back("rng.pt");
  }
  fs::atomic_write((tmp / "state.json").string(), state_to_json(state).dump(2) + "\n");
  files.push_back("state.json");
  fs::atomic_write((tmp / "config.yaml").string(), state.config_yaml);
  files.push_back("config.yaml");
  fs::atomic_write((tmp / "metrics.jsonl").string(), state.metrics_jsonl);
  files.push_back("metrics.jsonl");
  for (const auto& f : files) {
    const auto p = (tmp / f).string();
    manifest["files"][f] = {{"sha256", sha256_file(p)}, {"bytes", sfs::file_size(p)}};
  }
  fs::atomic_write((tmp / kManifest).string(), manifest.dump(2) + "\n");
  fs::atomic_write((tmp / kComplete).string(), grpo::str("step ", state.step, "\n"));
  fs::fsync_dir(tmp.string());

  // An older checkpoint of the same step (a re-run after resume) is moved aside, not deleted first,
  // so there is always one complete copy under some name.
  const sfs::path final_dir = root / name;
  sfs::path old;
  if (sfs::exists(final_dir)) {
    old = root / grpo::str(".tmp-old-", name, "-", ::getpid());
    remove_quietly(old);
    sfs::rename(final_dir, old);
  }
  sfs::rename(tmp, final_dir);
  fs::fsync_dir(root.string());
  if (!old.empty()) remove_quietly(old);
  fs::atomic_write((root / "latest").string(), name + "\n");

  // Prune: leftovers of crashed saves, then all but the newest keep_last complete checkpoints.
  std::error_code ec;
  for (const auto& e : sfs::directory_iterator(root, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) remove_quietly(e.path());
  auto all = list_checkpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) {
    log::info(grpo::str("checkpoint: removing old ", all[i].second, " (save_total_limit = ", keep_last, ")"));
    remove_quietly(all[i].second);
  }
  fs::fsync_dir(root.string());
}

// The AdamW state of `p`, or nullptr when it has none yet (no step taken).
torch::optim::AdamWParamState* adamw_state(torch::optim::Optimizer& opt, const torch::Tensor& p) {
  auto& st = opt.state();
  auto it = st.find(p.unsafeGetTensorImpl());
  if (it == st.end()) return nullptr;
  auto* s = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get());
  GRPO_CHECK(s, "checkpoint: the optimizer is not AdamW");
  return s;
}

// Name of every optimizer parameter, by tensor identity; throws when one has no name in `weights`.
std::vector<std::pair<std::string, torch::Tensor>> named_optimizer_params(const NamedTensors& weights,
                                                                           torch::optim::Optimizer& opt) {
  std::map<const void*, std::string> names;
  for (const auto& [n, t] : weights) names[t.unsafeGetTensorImpl()] = n;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& g : opt.param_groups())
    for (const auto& p : g.params()) {
      auto it = names.find(p.unsafeGetTensorImpl());
      GRPO_CHECK(it != names.end(), "checkpoint: an optimizer parameter is not among the checkpointed weights");
      out.emplace_back(it->second, p);
    }
  return out;
}

}  // namespace

LocalShards replicated_shards(const NamedTensors& weights, torch::optim::Optimizer* optimizer) {
  LocalShards s;
  for (const auto& [n, t] : weights) s.weights.push_back({n, t.sizes().vec(), 0, t.numel(), t});
  if (!optimizer) return s;
  for (const auto& [n, p] : named_optimizer_params(weights, *optimizer)) {
    auto* st = adamw_state(*optimizer, p);
    if (!st) continue;
    GRPO_CHECK(!st->max_exp_avg_sq().defined() || st->max_exp_avg_sq().numel() == 0,
               "checkpoint: AdamW amsgrad state is not checkpointed");
    s.optimizer.push_back({exp_avg_key(n), p.sizes().vec(), 0, p.numel(), st->exp_avg()});
    s.optimizer.push_back({exp_avg_sq_key(n), p.sizes().vec(), 0, p.numel(), st->exp_avg_sq()});
    s.optimizer_step[n] = st->step();
  }
  return s;
}

void load_replicated(const ShardReader& r, const NamedTensors& weights, torch::optim::Optimizer* optimizer) {
  torch::NoGradGuard ng;
  // Every weight must be there with its shape, and nothing else: a checkpoint belongs to one model.
  std::set<std::string> names;
  for (const auto& [n, t] : weights) {
    names.insert(n);
    const TensorMeta* m = r.find(n);
    GRPO_REQUIRE(m, "checkpoint '", r.dir(), "' has no weight '", n, "' (the model has it)");
    GRPO_REQUIRE(m->shape == t.sizes().vec(), "checkpoint '", r.dir(), "': weight '", n, "' has shape ",
                 c10::IntArrayRef(m->shape), ", the model expects ", t.sizes());
    r.read_into(n, 0, t.is_contiguous() ? t : t.contiguous());  // parameters are contiguous
  }
  for (const auto& [key, m] : r.tensors())
    if (key.rfind("exp_avg", 0) != 0)
      GRPO_REQUIRE(names.count(key), "checkpoint '", r.dir(), "' holds weight '", key, "', which the model does not have");
  if (!optimizer) return;
  for (const auto& [n, p] : named_optimizer_params(weights, *optimizer)) {
    const int64_t step = r.optimizer_step(n);
    auto& st = optimizer->state();
    if (step == 0) {
      st.erase(p.unsafeGetTensorImpl());
      continue;
    }
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(step);
    s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    r.read_into(exp_avg_key(n), 0, s->exp_avg());
    r.read_into(exp_avg_sq_key(n), 0, s->exp_avg_sq());
    st[p.unsafeGetTensorImpl()] = std::move(s);
  }
}

std::string save_checkpoint(const std::string& output_dir, const TrainState& state, const NamedTensors& weights,
                            torch::optim::Optimizer* optimizer, int keep_last) {
  return save_checkpoint(output_dir, state, replicated_shards(weights, optimizer), nullptr, "none", keep_last);
}

std::string save_checkpoint(const std::string& output_dir, const TrainState& state, const LocalShards& mine,
                            dist::Distributed* dist, const std::string& sharding, int keep_last) {
  GRPO_REQUIRE(keep_last >= 1, "checkpoint: keep_last (checkpoint.save_total_limit) must be >= 1, got ", keep_last);
  GRPO_REQUIRE(state.step >= 0, "checkpoint: step must be >= 0, got ", state.step);
  const int rank = dist ? dist->rank() : 0, world = dist ? dist->world_size() : 1;
  const sfs::path root = ckpt_root(output_dir);
  const std::string name = ckpt_name(state.step);
  const sfs::path final_dir = root / name;
  auto fail = [&](const std::string& why) {
    return InputError(grpo::str("checkpoint: saving step ", state.step, " to '", final_dir.string(), "' failed: ", why));
  };
  // 1. Rank 0 makes the .tmp directory every rank writes into; every rank says whether it holds
  //    pieces (one writer: plain file names).
  json hello{{"has", !mine.weights.empty() || !mine.optimizer.empty()}};
  if (rank == 0) {
    try {
      const sfs::path tmp = root / grpo::str(".tmp-", name, "-", ::getpid());
      sfs::create_directories(root);
      remove_quietly(tmp);
      sfs::create_directories(tmp);
      hello["tmp"] = tmp.string();
    } catch (const std::exception& e) {
      hello["error"] = describe(e);
    }
  }
  auto hellos = gather(dist, hello.dump());
  if (auto err = first_error(hellos); !err.empty()) throw fail(err);
  const sfs::path tmp = json::parse(hellos[0]).at("tmp").get<std::string>();
  int writers = 0;
  for (const auto& h : hellos) writers += json::parse(h).at("has").get<bool>() ? 1 : 0;

  // 2. Every rank writes its own shard files (fsync'ed) and reports them; the save hook (tests)
  //    runs on every rank after its shards are written, before anything marks the save complete.
  json mine_json;
  try {
    json files = json::array();
    for (const auto& f : write_local_shards(tmp.string(), mine, rank, world, writers == 1)) files.push_back(f.to_json());
    if (save_hook()) save_hook()(state.step);
    mine_json = {{"files", files}, {"steps", mine.optimizer_step}};
  } catch (const std::exception& e) {
    mine_json = {{"error", describe(e)}};
  }
  auto reports = gather(dist, mine_json.dump());
  std::string err = first_error(reports);

  // 3. Rank 0 publishes; every rank learns the outcome.
  if (rank == 0 && err.empty()) {
    try {
      std::vector<WrittenShardFile> files;
      std::map<std::string, int64_t> steps;
      for (const auto& rep : reports) {
        const json j = json::parse(rep);
        for (const auto& f : j.at("files")) files.push_back(WrittenShardFile::from_json(f));
        for (const auto& [k, v] : j.at("steps").items()) steps[k] = std::max(steps[k], v.get<int64_t>());
      }
      publish(root, tmp, name, state, shards_metadata(files, steps, world, sharding), files, keep_last, output_dir);
    } catch (const std::exception& e) {
      err = describe(e);
    }
  }
  if (rank == 0 && !err.empty()) remove_quietly(tmp);
  auto outcome = gather(dist, err.empty() ? json::object().dump() : json{{"error", err}}.dump());
  if (auto e = first_error(outcome); !e.empty()) throw fail(rank == 0 ? err : e);
  if (rank == 0) log::info(grpo::str("checkpoint: saved step ", state.step, " to ", final_dir.string()));
  return final_dir.string();
}

std::string verify_checkpoint(const std::string& dir) {
  const sfs::path d(dir);
  std::error_code ec;
  if (!sfs::is_directory(d, ec)) return "not a directory";
  if (!sfs::exists(d / kComplete, ec)) return "incomplete (no COMPLETE marker: the save did not finish)";
  json manifest;
  try {
    manifest = json::parse(fs::read_file((d / kManifest).string()));
  } catch (const std::exception& e) {
    return grpo::str("unreadable ", kManifest, ": ", e.what());
  }
  if (!manifest.contains("files") || !manifest["files"].is_object()) return grpo::str(kManifest, " has no 'files' table");
  // A sharded checkpoint lists shards.json; a checkpoint of the first format (legacy) model.safetensors.
  const bool sharded = manifest["files"].contains(kShardsMeta);
  for (const char* required : {sharded ? kShardsMeta : "model.safetensors", "state.json"})
    if (!manifest["files"].contains(required)) return grpo::str(kManifest, " does not list ", required);
  for (const auto& [name, info] : manifest["files"].items()) {
    if (!info.is_object() || !info.contains("bytes") || !info["bytes"].is_number_unsigned() ||
        !info.contains("sha256") || !info["sha256"].is_string())
      return grpo::str(kManifest, ": entry '", name, "' needs unsigned 'bytes' and string 'sha256'");
    if (name.find('/') != std::string::npos || name == "..") return grpo::str(kManifest, ": bad file name '", name, "'");
    const auto p = d / name;
    if (!sfs::is_regular_file(p, ec)) return grpo::str("missing file ", name);
    const auto size = sfs::file_size(p, ec);
    if (ec || size != info["bytes"].get<uint64_t>())
      return grpo::str(name, " has ", size, " bytes, the manifest says ", info.value("bytes", json()).dump(),
                 " (truncated or modified)");
    std::string sha;
    try {
      sha = sha256_file(p.string());
    } catch (const InputError& e) {
      return e.what();
    }
    if (sha != info.value("sha256", "")) return grpo::str(name, " fails its SHA-256 check (corrupt or modified)");
  }
  // The metadata against the shard files: every piece present with its dtype and size, every
  // tensor covered once. A shard file missing from the manifest is reported here by name.
  return sharded ? verify_shards(dir) : "";
}

bool is_sharded_checkpoint(const std::string& dir) { return sfs::exists(sfs::path(dir) / kShardsMeta); }

void read_weights(const std::string& dir, const NamedTensors& weights) {
  if (!is_sharded_checkpoint(dir)) {
    model::read_named(safetensors::File((sfs::path(dir) / "model.safetensors").string()), weights, model::ExtraTensors::IGNORE);
    return;
  }
  const ShardReader r(dir);
  torch::NoGradGuard ng;
  for (const auto& [n, t] : weights) {
    const TensorMeta* m = r.find(n);
    GRPO_REQUIRE(m, "checkpoint '", dir, "' has no weight '", n, "' (the model has it)");
    GRPO_REQUIRE(m->shape == t.sizes().vec(), "checkpoint '", dir, "': weight '", n, "' has shape ",
                 c10::IntArrayRef(m->shape), ", the model expects ", t.sizes());
    r.read_into(n, 0, t);
  }
}

LoadedCheckpoint load_checkpoint_state(const std::string& dir) {
  const std::string problem = verify_checkpoint(dir);
  GRPO_REQUIRE(problem.empty(), "checkpoint '", dir, "' is not usable: ", problem);
  const sfs::path d(dir);
  LoadedCheckpoint out;
  out.path = dir;
  auto& s = out.state;
  try {
    const json j = json::parse(fs::read_file((d / "state.json").string()));
    GRPO_REQUIRE(j.value("format_version", 0) == kFormatVersion, "checkpoint '", dir, "': state.json format_version ",
                 j.value("format_version", 0), " is not ", kFormatVersion);
    s.step = j.at("step").get<int64_t>();
    s.stage = j.at("stage").get<std::string>();
    s.data.epoch = j.at("data").at("epoch").get<int64_t>();
    s.data.index = j.at("data").at("index").get<int64_t>();
    s.scheduler = j.at("scheduler");
    s.extra = j.at("extra");
  } catch (const json::exception& e) {
    throw InputError(grpo::str("checkpoint '", dir, "': bad state.json: ", e.what()));
  }
  s.config_yaml = fs::read_file((d / "config.yaml").string());
  s.metrics_jsonl = fs::read_file((d / "metrics.jsonl").string());
  try {
    if (sfs::exists(d / "rng.pt")) s.rng = load_rng((d / "rng.pt").string());
  } catch (const c10::Error& e) {
    throw InputError(grpo::str("checkpoint '", dir, "': cannot load the RNG state: ", e.what_without_backtrace()));
  }
  return out;
}

LoadedCheckpoint load_checkpoint(const std::string& dir, const NamedTensors& weights,
                                 torch::optim::Optimizer* optimizer) {
  LoadedCheckpoint out = load_checkpoint_state(dir);
  const sfs::path d(dir);
  if (is_sharded_checkpoint(dir)) {
    load_replicated(ShardReader(dir), weights, optimizer);
    return out;
  }
  // The first format: model.safetensors and a torch::serialize optimizer archive.
  model::read_named(safetensors::File((d / "model.safetensors").string()), weights, model::ExtraTensors::REJECT);
  try {
    if (optimizer) {
      GRPO_REQUIRE(sfs::exists(d / "optimizer.pt"), "checkpoint '", dir, "' has no optimizer.pt");
      torch::serialize::InputArchive ar;
      ar.load_from((d / "optimizer.pt").string());
      optimizer->load(ar);
    }
  } catch (const c10::Error& e) {
    throw InputError(grpo::str("checkpoint '", dir, "': cannot load optimizer state: ", e.what_without_backtrace()));
  }
  return out;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  const sfs::path root = ckpt_root(output_dir);
  std::error_code ec;
  if (!sfs::is_directory(root, ec)) return out;
  for (const auto& e : sfs::directory_iterator(root, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_directory() && sfs::exists(e.path() / kComplete)) out.emplace_back(step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> find_resume(const std::string& resume, const std::string& output_dir) {
  if (resume.empty()) return std::nullopt;
  if (resume != "auto") {
    const std::string problem = verify_checkpoint(resume);
    GRPO_REQUIRE(problem.empty(), "checkpoint.resume: '", resume, "' is not a usable checkpoint: ", problem);
    return resume;
  }
  // Newest first, including directories without the marker, so that skipping them is reported.
  std::vector<std::pair<int64_t, std::string>> cands;
  std::error_code ec;
  const sfs::path root = ckpt_root(output_dir);
  if (!sfs::is_directory(root, ec)) return std::nullopt;
  for (const auto& e : sfs::directory_iterator(root, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_directory()) cands.emplace_back(step, e.path().string());
  }
  std::sort(cands.rbegin(), cands.rend());
  for (const auto& [step, path] : cands) {
    const std::string problem = verify_checkpoint(path);
    if (problem.empty()) return path;
    log::warn(grpo::str("checkpoint: skipping ", path, ": ", problem));
  }
  return std::nullopt;
}

}  // namespace grpo::train
