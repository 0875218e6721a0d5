#pragma once
// max |a - b| / max |a| over every value of two safetensors files (float32 or float64 tensors),
// matched by name: every tensor of `a` must be in `b` with the same size and dtype (a gtest failure
// and INFINITY otherwise). The parity bound the distributed and resume tests use.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "grpo/util/safetensors.h"

namespace grpo::testing {

inline double weights_rel_diff(const std::string& a_path, const std::string& b_path) {
  grpo::safetensors::File a(a_path), b(b_path);
  std::map<std::string, grpo::safetensors::TensorInfo> tb;
  for (const auto& t : b.tensors()) tb[t.name] = t;
  EXPECT_EQ(a.tensors().size(), tb.size()) << a_path << " vs " << b_path;
  if (a.tensors().size() != tb.size() || tb.empty()) return INFINITY;
  auto value = [](const grpo::safetensors::File& f, const grpo::safetensors::TensorInfo& t, size_t i) {
    return t.dtype == "F64" ? static_cast<const double*>(f.data(t))[i] : double(static_cast<const float*>(f.data(t))[i]);
  };
  double num = 0, den = 0;
  for (const auto& ta : a.tensors()) {
    auto it = tb.find(ta.name);
    if (it == tb.end() || it->second.nbytes != ta.nbytes || it->second.dtype != ta.dtype ||
        (ta.dtype != "F32" && ta.dtype != "F64")) {
      ADD_FAILURE() << ta.name << " differs in presence, size or dtype between " << a_path << " and " << b_path;
      return INFINITY;
    }
    const size_t n = ta.nbytes / (ta.dtype == "F64" ? 8 : 4);
    for (size_t k = 0; k < n; ++k) {
      num = std::max(num, std::abs(value(a, ta, k) - value(b, it->second, k)));
      den = std::max(den, std::abs(value(a, ta, k)));
    }
  }
  return den > 0 ? num / den : INFINITY;
}

}  // namespace grpo::testing
