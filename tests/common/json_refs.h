#pragma once
// Reference values that scripts/make_*_refs.py write as JSON (from the reference implementation,
// e.g. TRL, in float64), read back as nlohmann::json and tensors.
#include <torch/torch.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::testing {

/// The JSON file at `relative_path` under the source tree (GRPO_SOURCE_DIR).
inline nlohmann::json read_source_json(const std::string& relative_path) {
  std::ifstream f(std::string(GRPO_SOURCE_DIR) + "/" + relative_path);
  return nlohmann::json::parse(f);
}

/// A JSON list of numbers ([N]) or of equal-length lists ([R, C]) as a tensor of that shape,
/// parsed as float64 and converted to `dt`.
inline torch::Tensor to_tensor(const nlohmann::json& j, torch::Dtype dt) {
  std::vector<double> flat;
  std::vector<int64_t> shape;
  if (j.at(0).is_array()) {
    shape = {static_cast<int64_t>(j.size()), static_cast<int64_t>(j.at(0).size())};
    for (auto& row : j)
      for (auto& v : row) flat.push_back(v.get<double>());
  } else {
    shape = {static_cast<int64_t>(j.size())};
    for (auto& v : j) flat.push_back(v.get<double>());
  }
  return torch::tensor(flat, torch::kFloat64).reshape(shape).to(dt);
}

}  // namespace grpo::testing
