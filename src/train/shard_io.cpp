#include "grpo/train/shard_io.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "grpo/model/weights_io.h"
#include "grpo/train/checkpoint.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/safetensors.h"

namespace grpo::train {
namespace {

namespace sfs = std::filesystem;
using nlohmann::json;

constexpr int kShardsVersion = 1;

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// model.safetensors, or model-00001-of-00003.safetensors (rank 1 of 3).
std::string shard_file_name(const std::string& stem, int rank, int world_size, bool single_writer) {
  if (single_writer) return stem + ".safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.safetensors", rank, world_size);
  return stem + buf;
}

// Writes one file of pieces; returns its record (pieces, size, SHA-256).
WrittenShardFile write_pieces(const std::string& dir, const std::string& file, int rank,
                              const std::vector<ShardPiece>& pieces) {
  WrittenShardFile w;
  w.file = file;
  w.rank = rank;
  model::NamedTensors named;
  std::set<std::string> seen;
  for (const auto& p : pieces) {
    const int64_t total = numel_of(p.shape);
    GRPO_REQUIRE(p.data.defined(), "checkpoint: piece of '", p.key, "' has no data");
    GRPO_REQUIRE(0 <= p.begin && p.begin <= p.end && p.end <= total, "checkpoint: piece [", p.begin, ", ", p.end,
                 ") of '", p.key, "' is outside its ", total, " elements ", shape_str(p.shape));
    GRPO_REQUIRE(p.data.numel() == p.end - p.begin, "checkpoint: piece [", p.begin, ", ", p.end, ") of '", p.key,
                 "' holds ", p.data.numel(), " elements");
    GRPO_REQUIRE(seen.insert(p.key).second, "checkpoint: rank ", rank, " holds two pieces of '", p.key, "'");
    const bool whole = p.begin == 0 && p.end == total;
    // Whole tensors keep their shape (an unsharded model.safetensors is an ordinary weights file).
    auto t = p.data.detach().contiguous().reshape(whole ? c10::IntArrayRef(p.shape) : c10::IntArrayRef{p.end - p.begin});
    named.emplace_back(p.key, t);
    w.pieces.push_back({p.key, p.begin, p.end, p.shape, model::safetensors_dtype(p.data.scalar_type())});
  }
  const std::string path = (sfs::path(dir) / file).string();
  model::write_named(path, named, {{"format", "pt"}, {"grpo_shard_rank", std::to_string(rank)}});
  w.bytes = sfs::file_size(path);
  w.sha256 = sha256_file(path);
  return w;
}

}  // namespace

std::string exp_avg_key(const std::string& param) { return "exp_avg/" + param; }
std::string exp_avg_sq_key(const std::string& param) { return "exp_avg_sq/" + param; }

json WrittenShardFile::to_json() const {
  json ps = json::array();
  for (const auto& p : pieces) ps.push_back({{"key", p.key}, {"begin", p.begin}, {"end", p.end}, {"shape", p.shape}, {"dtype", p.dtype}});
  return {{"file", file}, {"rank", rank}, {"pieces", ps}, {"bytes", bytes}, {"sha256", sha256}};
}

WrittenShardFile WrittenShardFile::from_json(const json& j) {
  WrittenShardFile w;
  w.file = j.at("file").get<std::string>();
  w.rank = j.at("rank").get<int>();
  w.bytes = j.at("bytes").get<uint64_t>();
  w.sha256 = j.at("sha256").get<std::string>();
  for (const auto& p : j.at("pieces"))
    w.pieces.push_back({p.at("key").get<std::string>(), p.at("begin").get<int64_t>(), p.at("end").get<int64_t>(),
                        p.at("shape").get<std::vector<int64_t>>(), p.at("dtype").get<std::string>()});
  return w;
}

std::vector<WrittenShardFile> write_local_shards(const std::string& dir, const LocalShards& mine, int rank,
                                                 int world_size, bool single_writer) {
  std::vector<WrittenShardFile> out;
  if (!mine.weights.empty())
    out.push_back(write_pieces(dir, shard_file_name("model", rank, world_size, single_writer), rank, mine.weights));
  if (!mine.optimizer.empty())
    out.push_back(write_pieces(dir, shard_file_name("optimizer", rank, world_size, single_writer), rank, mine.optimizer));
  return out;
}

json shards_metadata(const std::vector<WrittenShardFile>& files, const std::map<std::string, int64_t>& optimizer_step,
                     int world_size, const std::string& sharding) {
  json tensors = json::object(), fl = json::array();
  for (const auto& f : files) {
    json ps = json::array();
    for (const auto& p : f.pieces) {
      json t{{"shape", p.shape}, {"dtype", p.dtype}};
      if (tensors.contains(p.key))
        GRPO_REQUIRE(tensors[p.key] == t, "checkpoint: ranks disagree about tensor '", p.key, "': ",
                     tensors[p.key].dump(), " vs ", t.dump(), " (", f.file, ")");
      else
        tensors[p.key] = t;
      ps.push_back(json::array({p.key, p.begin, p.end}));
    }
    fl.push_back({{"file", f.file}, {"rank", f.rank}, {"pieces", ps}});
  }
  json steps = json::object();
  for (const auto& [k, v] : optimizer_step)
    if (v > 0) steps[k] = v;
  return {{"format", "grpo-sharded"}, {"version", kShardsVersion}, {"world_size", world_size}, {"sharding", sharding},
          {"tensors", tensors},       {"files", fl},                {"optimizer_step", steps}};
}

// ---------------------------------------------------------------------------------------------

struct ShardReader::Impl {
  std::vector<std::string> files;
  mutable std::vector<std::unique_ptr<safetensors::File>> open;  // mapped on first use
  const safetensors::File& file(const std::string& dir, size_t i) const {
    if (!open[i]) open[i] = std::make_unique<safetensors::File>((sfs::path(dir) / files[i]).string());
    return *open[i];
  }
};

namespace {

// Parses shards.json into the reader's tables; returns "" or the first problem.
std::string parse_meta(const json& j, int& world, std::string& sharding, std::map<std::string, TensorMeta>& tensors,
                       std::vector<std::string>& files,
                       std::map<std::string, std::vector<std::tuple<size_t, int64_t, int64_t>>>& pieces,
                       std::map<std::string, int64_t>& steps) {
  if (!j.is_object()) return grpo::str(kShardsMeta, ": expected a JSON object, got ", j.type_name());
  if (!j.contains("format") || j["format"] != "grpo-sharded") return grpo::str(kShardsMeta, ": format is not \"grpo-sharded\"");
  if (!j.contains("version") || j["version"] != kShardsVersion)
    return grpo::str(kShardsMeta, ": version ", j.value("version", json()).dump(), " is not ", kShardsVersion,
                     " (written by another version of grpo?)");
  // Each field checked before it is read, so that a damaged file names what it lacks rather than a
  // json type error ("type must be number, but is null").
  auto is_int_array = [](const json& a) {
    return a.is_array() && std::all_of(a.begin(), a.end(), [](const json& x) { return x.is_number_integer(); });
  };
  if (!j.contains("world_size") || !j["world_size"].is_number_integer() || j["world_size"].get<int64_t>() < 1)
    return grpo::str(kShardsMeta, ": expected \"world_size\" as a positive integer");
  if (!j.contains("sharding") || !j["sharding"].is_string())
    return grpo::str(kShardsMeta, ": expected \"sharding\" as a string");
  if (!j.contains("tensors") || !j["tensors"].is_object())
    return grpo::str(kShardsMeta, ": expected \"tensors\" as an object {key: {shape, dtype}}");
  if (!j.contains("files") || !j["files"].is_array())
    return grpo::str(kShardsMeta, ": expected \"files\" as an array of {file, rank, pieces}");
  world = j["world_size"].get<int>();
  sharding = j["sharding"].get<std::string>();
  for (const auto& [key, t] : j["tensors"].items()) {
    if (!t.is_object() || !t.contains("shape") || !is_int_array(t["shape"]) || !t.contains("dtype") || !t["dtype"].is_string())
      return grpo::str(kShardsMeta, ": tensor '", key, "' is ", t.dump(), ", expected {\"shape\": [integers], \"dtype\": string}");
    TensorMeta m{t["shape"].get<std::vector<int64_t>>(), t["dtype"].get<std::string>(), 0};
    m.numel = numel_of(m.shape);
    tensors[key] = m;
  }
  for (size_t fi = 0; fi < j["files"].size(); ++fi) {
    const json& f = j["files"][fi];
    if (!f.is_object() || !f.contains("file") || !f["file"].is_string() || !f.contains("pieces") || !f["pieces"].is_array())
      return grpo::str(kShardsMeta, ": files[", fi, "] expected {\"file\": string, \"rank\": integer, \"pieces\": array}");
    const std::string name = f["file"].get<std::string>();
    if (name.find('/') != std::string::npos || name == ".." || name.empty())
      return grpo::str(kShardsMeta, ": bad file name '", name, "'");
    files.push_back(name);
    for (const auto& p : f["pieces"]) {
      if (!p.is_array() || p.size() != 3 || !p[0].is_string() || !p[1].is_number_integer() || !p[2].is_number_integer())
        return grpo::str(kShardsMeta, ": a piece of ", name, " is ", p.dump(), ", expected [key, begin, end] with integer begin and end");
      const std::string key = p[0].get<std::string>();
      const int64_t b = p[1].get<int64_t>(), e = p[2].get<int64_t>();
      auto it = tensors.find(key);
      if (it == tensors.end()) return grpo::str(kShardsMeta, ": ", name, " holds a piece of '", key, "', which is not in its tensors");
      if (b < 0 || b > e || e > it->second.numel)
        return grpo::str(kShardsMeta, ": ", name, " holds [", b, ", ", e, ") of '", key, "', outside its ", it->second.numel,
                         " elements");
      pieces[key].emplace_back(files.size() - 1, b, e);
    }
  }
  const json steps_j = j.value("optimizer_step", json::object());
  if (!steps_j.is_object()) return grpo::str(kShardsMeta, ": expected \"optimizer_step\" as an object {param: integer}");
  // (Iterating items() of j.value(...) itself would walk a destroyed temporary: the cause of the
  // earlier "type must be number, but is null" on every resume.)
  for (const auto& [k, v] : steps_j.items()) {
    if (!v.is_number_integer()) return grpo::str(kShardsMeta, ": optimizer_step of '", k, "' is ", v.dump(), ", expected an integer");
    steps[k] = v.get<int64_t>();
  }
  // Exactly-once coverage of every tensor.
  for (auto& [key, m] : tensors) {
    auto& ps = pieces[key];
    std::sort(ps.begin(), ps.end(), [](const auto& a, const auto& b) { return std::get<1>(a) < std::get<1>(b); });
    int64_t at = 0;
    for (const auto& [f, b, e] : ps) {
      if (b > at) return grpo::str("tensor '", key, "' (", m.numel, " elements): elements [", at, ", ", b, ") are in no shard file");
      if (b < at)
        return grpo::str("tensor '", key, "': ", files[f], " holds [", b, ", ", e, "), which overlaps elements up to ", at,
                         " held by another piece");
      at = e;
    }
    if (at != m.numel)
      return grpo::str("tensor '", key, "' (", m.numel, " elements): elements [", at, ", ", m.numel, ") are in no shard file");
  }
  return "";
}

// Checks one shard file's header against its pieces.
std::string check_file(const safetensors::File& f, const std::string& name, const std::map<std::string, TensorMeta>& tensors,
                       const std::vector<std::tuple<std::string, int64_t, int64_t>>& listed) {
  for (const auto& [key, b, e] : listed) {
    const auto* info = f.find(key);
    const auto& m = tensors.at(key);
    if (!info) return grpo::str(name, " has no entry '", key, "'; ", kShardsMeta, " says it holds [", b, ", ", e, ")");
    if (info->dtype != m.dtype)
      return grpo::str(name, ": '", key, "' is ", info->dtype, ", ", kShardsMeta, " says ", m.dtype);
    if (numel_of(info->shape) != e - b)
      return grpo::str(name, ": '", key, "' holds ", numel_of(info->shape), " elements ", shape_str(info->shape), ", ",
                       kShardsMeta, " says [", b, ", ", e, ") of ", shape_str(m.shape), " (", e - b, " elements)");
  }
  return "";
}

}  // namespace

std::string verify_shards(const std::string& dir) {
  json j;
  try {
    j = json::parse(fs::read_file((sfs::path(dir) / kShardsMeta).string()));
  } catch (const std::exception& e) {
    return grpo::str("unreadable ", kShardsMeta, ": ", e.what());
  }
  int world = 0;
  std::string sharding;
  std::map<std::string, TensorMeta> tensors;
  std::vector<std::string> files;
  std::map<std::string, std::vector<std::tuple<size_t, int64_t, int64_t>>> pieces;
  std::map<std::string, int64_t> steps;
  try {
    if (auto p = parse_meta(j, world, sharding, tensors, files, pieces, steps); !p.empty()) return p;
  } catch (const json::exception& e) {
    return grpo::str("malformed ", kShardsMeta, ": ", e.what());
  }
  std::vector<std::vector<std::tuple<std::string, int64_t, int64_t>>> per_file(files.size());
  for (const auto& [key, ps] : pieces)
    for (const auto& [f, b, e] : ps) per_file[f].emplace_back(key, b, e);
  for (size_t i = 0; i < files.size(); ++i) {
    const auto path = sfs::path(dir) / files[i];
    std::error_code ec;
    if (!sfs::is_regular_file(path, ec)) return grpo::str("missing shard file ", files[i], " (listed in ", kShardsMeta, ")");
    try {
      safetensors::File f(path.string());
      if (auto p = check_file(f, files[i], tensors, per_file[i]); !p.empty()) return p;
    } catch (const InputError& e) {
      return e.what();
    }
  }
  return "";
}

ShardReader::ShardReader(const std::string& dir) : dir_(dir), impl_(std::make_unique<Impl>()) {
  const std::string problem = verify_shards(dir);
  GRPO_REQUIRE(problem.empty(), "checkpoint '", dir, "': ", problem);
  const json j = json::parse(fs::read_file((sfs::path(dir) / kShardsMeta).string()));
  std::map<std::string, std::vector<std::tuple<size_t, int64_t, int64_t>>> pieces;
  parse_meta(j, world_size_, sharding_, tensors_, impl_->files, pieces, steps_);
  impl_->open.resize(impl_->files.size());
  for (const auto& [key, ps] : pieces)
    for (const auto& [f, b, e] : ps) pieces_[key].push_back({f, b, e});
}

ShardReader::~ShardReader() = default;
ShardReader::ShardReader(ShardReader&&) noexcept = default;

const TensorMeta* ShardReader::find(const std::string& key) const {
  auto it = tensors_.find(key);
  return it == tensors_.end() ? nullptr : &it->second;
}

int64_t ShardReader::optimizer_step(const std::string& param) const {
  auto it = steps_.find(param);
  return it == steps_.end() ? 0 : it->second;
}

void ShardReader::read_into(const std::string& key, int64_t begin, const torch::Tensor& dst) const {
  const TensorMeta* m = find(key);
  GRPO_REQUIRE(m, "checkpoint '", dir_, "' has no tensor '", key, "'");
  const int64_t n = dst.numel(), end = begin + n;
  GRPO_REQUIRE(begin >= 0 && end <= m->numel, "checkpoint '", dir_, "': elements [", begin, ", ", end, ") of '", key,
               "' are outside its ", m->numel, " elements ", shape_str(m->shape));
  const auto dtype = model::torch_dtype(m->dtype, dir_ + " " + key);
  const size_t esize = safetensors::dtype_size(m->dtype);
  torch::NoGradGuard ng;
  auto flat = dst.view({n});  // throws for a non-viewable dst, which read_into cannot fill in place
  for (const auto& p : pieces_.at(key)) {
    const int64_t lo = std::max(begin, p.begin), hi = std::min(end, p.end);
    if (lo >= hi) continue;
    const auto& f = impl_->file(dir_, p.file);
    const auto* info = f.find(key);
    const auto* bytes = static_cast<const char*>(f.data(*info)) + static_cast<size_t>(lo - p.begin) * esize;
    auto src = torch::from_blob(const_cast<char*>(bytes), {hi - lo}, torch::TensorOptions().dtype(dtype));
    flat.narrow(0, lo - begin, hi - lo).copy_(src);
  }
}

torch::Tensor ShardReader::read(const std::string& key, int64_t begin, int64_t end) const {
  const TensorMeta* m = find(key);
  GRPO_REQUIRE(m, "checkpoint '", dir_, "' has no tensor '", key, "'");
  GRPO_REQUIRE(begin <= end, "checkpoint: read of '", key, "' with begin ", begin, " > end ", end);
  auto out = torch::empty({end - begin}, torch::TensorOptions().dtype(model::torch_dtype(m->dtype, dir_ + " " + key)));
  read_into(key, begin, out);
  return out;
}

torch::Tensor ShardReader::read_whole(const std::string& key) const {
  const TensorMeta* m = find(key);
  GRPO_REQUIRE(m, "checkpoint '", dir_, "' has no tensor '", key, "'");
  return read(key, 0, m->numel).view(m->shape);
}

}  // namespace grpo::train
