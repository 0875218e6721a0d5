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

#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/log.h"
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

std::string save_checkpoint(const std::string& output_dir, const TrainState& state, const NamedTensors& weights,
                            torch::optim::Optimizer* optimizer, int keep_last) {
  GRPO_REQUIRE(keep_last >= 1, "checkpoint: keep_last (checkpoint.save_total_limit) must be >= 1, got ", keep_last);
  GRPO_REQUIRE(state.step >= 0, "checkpoint: step must be >= 0, got ", state.step);
  const sfs::path root = ckpt_root(output_dir);
  std::error_code ec;
  sfs::create_directories(root, ec);
  GRPO_REQUIRE(!ec, "checkpoint: cannot create '", root.string(), "': ", ec.message());
  const std::string name = ckpt_name(state.step);
  const sfs::path final_dir = root / name;
  const sfs::path tmp = root / grpo::str(".tmp-", name, "-", ::getpid());
  remove_quietly(tmp);
  sfs::create_directories(tmp, ec);
  GRPO_REQUIRE(!ec, "checkpoint: cannot create '", tmp.string(), "': ", ec.message());

  try {
    std::vector<std::string> files;
    model::write_named((tmp / "model.safetensors").string(), weights,
                       {{"format", "pt"}, {"step", std::to_string(state.step)}});
    files.push_back("model.safetensors");
    if (save_hook()) save_hook()(state.step);
    if (optimizer) {
      torch::serialize::OutputArchive ar;
      optimizer->save(ar);
      ar.save_to((tmp / "optimizer.pt").string());
      fsync_file((tmp / "optimizer.pt").string());
      files.push_back("optimizer.pt");
    }
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

    json manifest{{"format_version", kFormatVersion}, {"step", state.step}, {"files", json::object()}};
    for (const auto& f : files) {
      const auto p = (tmp / f).string();
      manifest["files"][f] = {{"sha256", sha256_file(p)}, {"bytes", sfs::file_size(p)}};
    }
    fs::atomic_write((tmp / kManifest).string(), manifest.dump(2) + "\n");
    fs::atomic_write((tmp / kComplete).string(), grpo::str("step ", state.step, "\n"));
    fs::fsync_dir(tmp.string());

    // An older checkpoint of the same step (a re-run after resume) is moved aside, not deleted first,
    // so there is always one complete copy under some name.
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
  } catch (const sfs::filesystem_error& e) {
    remove_quietly(tmp);
    throw InputError(grpo::str("checkpoint: saving step ", state.step, " to '", final_dir.string(), "' failed: ", e.what()));
  } catch (const c10::Error& e) {
    remove_quietly(tmp);
    throw InputError(grpo::str("checkpoint: saving step ", state.step, " to '", final_dir.string(),
                         "' failed: ", e.what_without_backtrace()));
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }

  // Prune: leftovers of crashed saves, then all but the newest keep_last complete checkpoints.
  for (const auto& e : sfs::directory_iterator(root, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) remove_quietly(e.path());
  auto all = list_checkpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) {
    log::info(grpo::str("checkpoint: removing old ", all[i].second, " (save_total_limit = ", keep_last, ")"));
    remove_quietly(all[i].second);
  }
  fs::fsync_dir(root.string());
  log::info(grpo::str("checkpoint: saved step ", state.step, " to ", final_dir.string()));
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
  for (const char* required : {"model.safetensors", "state.json"})
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
  return "";
}

LoadedCheckpoint load_checkpoint(const std::string& dir, const NamedTensors& weights,
                                 torch::optim::Optimizer* optimizer) {
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

  // Every weight must be there with its shape, and nothing else: a checkpoint belongs to one model.
  model::read_named(safetensors::File((d / "model.safetensors").string()), weights, model::ExtraTensors::REJECT);
  try {
    if (optimizer) {
      GRPO_REQUIRE(sfs::exists(d / "optimizer.pt"), "checkpoint '", dir, "' has no optimizer.pt");
      torch::serialize::InputArchive ar;
      ar.load_from((d / "optimizer.pt").string());
      optimizer->load(ar);
    }
    if (sfs::exists(d / "rng.pt")) s.rng = load_rng((d / "rng.pt").string());
  } catch (const c10::Error& e) {
    throw InputError(grpo::str("checkpoint '", dir, "': cannot load optimizer/RNG state: ", e.what_without_backtrace()));
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
