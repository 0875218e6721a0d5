#include "grpo/model/hf_weights.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "arch_table.h"
#include "grpo/model/hf_config.h"
#include "grpo/model/weights_io.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"
#include "grpo/util/safetensors.h"

namespace grpo::model {
namespace {

namespace stdfs = std::filesystem;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// The checkpoint's safetensors files and which file holds each tensor.
struct Checkpoint {
  std::vector<std::unique_ptr<safetensors::File>> files;
  std::map<std::string, const safetensors::File*> where;

  explicit Checkpoint(const std::string& dir) {
    const auto single = stdfs::path(dir) / "model.safetensors";
    const auto index = stdfs::path(dir) / "model.safetensors.index.json";
    if (stdfs::exists(index)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(fs::read_file(index.string()));
      } catch (const nlohmann::json::exception& e) {
        throw InputError(str(index.string(), ": not valid JSON: ", e.what()));
      }
      GRPO_REQUIRE(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                   ": expected an object 'weight_map' {tensor: file}");
      std::map<std::string, const safetensors::File*> opened;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        GRPO_REQUIRE(it.value().is_string(), index.string(), ": weight_map['", it.key(), "'] is not a file name");
        const std::string shard = it.value().get<std::string>();
        GRPO_REQUIRE(shard.find('/') == std::string::npos, index.string(), ": shard name '", shard,
                     "' must be a file in the same directory");
        if (!opened.count(shard)) {
          files.push_back(std::make_unique<safetensors::File>((stdfs::path(dir) / shard).string()));
          opened[shard] = files.back().get();
        }
        where[it.key()] = opened[shard];
      }
    } else if (stdfs::exists(single)) {
      files.push_back(std::make_unique<safetensors::File>(single.string()));
      for (const auto& t : files.back()->tensors()) where[t.name] = files.back().get();
    } else {
      throw InputError(str(dir, ": no model.safetensors or model.safetensors.index.json"));
    }
  }
};

}  // namespace

void load_hf_weights(Transformer& model, const std::string& dir) {
  const ArchInfo& arch = arch_info(model->spec().architecture, dir);
  Checkpoint ck(dir);
  torch::NoGradGuard ng;
  auto load_one = [&](const std::string& name, torch::Tensor& dst) {
    const std::string hf = hf_tensor_name(arch, name);
    auto it = ck.where.find(hf);
    const safetensors::TensorInfo* info = it == ck.where.end() ? nullptr : it->second->find(hf);
    if (!info) {
      if (is_optional_tensor(name)) return;
      const std::string file = it == ck.where.end() ? (ck.files.size() == 1 ? ck.files[0]->path() : dir) : it->second->path();
      throw InputError(str(file, ": missing tensor '", hf, "' (expected shape ", shape_str(dst.sizes().vec()), ")"));
    }
    read_tensor(*it->second, *info, dst, str("the model (", model->spec().architecture, " from config.json)"));
  };
  for (auto& p : model->named_parameters()) load_one(p.key(), p.value());
  for (auto& b : model->named_buffers()) load_one(b.key(), b.value());
}

Transformer load_hf(const std::string& dir) {
  GRPO_REQUIRE(stdfs::is_directory(dir), dir, ": not a directory (expected a Hugging Face model directory)");
  ModelSpec spec = read_hf_config((stdfs::path(dir) / "config.json").string());
  Transformer model(spec);
  load_hf_weights(model, dir);
  return model;
}

void save_hf(Transformer& model, const std::string& dir, torch::Dtype dtype) {
  std::string dtype_name;  // config.json's torch_dtype
  if (dtype == torch::kFloat32) dtype_name = "float32";
  else if (dtype == torch::kBFloat16) dtype_name = "bfloat16";
  else if (dtype == torch::kFloat16) dtype_name = "float16";
  else throw InputError(str("save_hf: dtype must be float32, bfloat16 or float16"));
  auto config = hf_config_from_spec(model->spec(), dtype_name);
  const ArchInfo& arch = arch_info(model->spec().architecture, dir);
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  GRPO_REQUIRE(!ec, "cannot create directory '", dir, "': ", ec.message());

  NamedTensors out;  // HF names, written sorted by name
  for (const auto& p : model->named_parameters()) out.emplace_back(hf_tensor_name(arch, p.key()), p.value());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  write_named((stdfs::path(dir) / "model.safetensors").string(), out, {{"format", "pt"}}, dtype);
  fs::atomic_write((stdfs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

}  // namespace grpo::model
