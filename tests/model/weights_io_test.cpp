// model/weights_io: the dtype table, write_named (read back by the reference `safetensors` package)
// and read_named / read_tensor (missing, misshaped and extra tensors, dtype conversion).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "grpo/model/weights_io.h"
#include "grpo/util/error.h"
#include "test_support.h"

namespace grpo::model {
namespace {

namespace stdfs = std::filesystem;

std::string scratch(const std::string& name) {
  auto d = testing::build_dir() + "/weights_io_test/" + name;
  std::error_code ec;
  stdfs::remove_all(d, ec);
  stdfs::create_directories(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

// One tensor of each dtype the table knows, with values that are not all equal (odd shapes).
NamedTensors every_dtype() {
  torch::manual_seed(11);
  return {{"f32", torch::randn({3, 5})},
          {"bf16", torch::randn({7}).to(torch::kBFloat16)},
          {"f16", torch::randn({2, 3}).to(torch::kFloat16)},
          {"f64", torch::randn({4}, torch::kFloat64)},
          {"i64", torch::randint(-1000, 1000, {5}, torch::kInt64)},
          {"i32", torch::randint(-1000, 1000, {2, 2}, torch::kInt32)}};
}

TEST(WeightsIo, DtypeTableBothWays) {
  // Names from the safetensors format specification (huggingface/safetensors, "Format").
  const std::vector<std::pair<torch::ScalarType, std::string>> expected = {
      {torch::kFloat32, "F32"}, {torch::kBFloat16, "BF16"}, {torch::kFloat16, "F16"},
      {torch::kFloat64, "F64"}, {torch::kInt64, "I64"},     {torch::kInt32, "I32"}};
  for (const auto& [t, name] : expected) {
    EXPECT_EQ(safetensors_dtype(t), name);
    EXPECT_EQ(torch_dtype(name, "x"), t) << name;
  }
  EXPECT_THROW(safetensors_dtype(torch::kBool), InputError);
  auto msg = error_of([] { torch_dtype("U8", "f.safetensors: tensor 'x'"); });
  EXPECT_NE(msg.find("f.safetensors: tensor 'x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("U8"), std::string::npos) << msg;
}

TEST(WeightsIo, WrittenFileIsReadByTheReferenceLibrary) {
  // The `safetensors` package (Rust deserializer, torch loader) reads what write_named wrote: every
  // name, dtype, shape and value; sums in float64 on both sides.
  const auto d = scratch("reference");
  const auto tensors = every_dtype();
  write_named(d + "/w.safetensors", tensors, {{"format", "pt"}});
  std::ofstream(d + "/read.py") << "import sys, torch\n"
                                   "from safetensors.torch import load_file\n"
                                   "t = load_file(sys.argv[1])\n"
                                   "for k in sorted(t):\n"
                                   "  print(k, str(t[k].dtype), list(t[k].shape), repr(t[k].double().sum().item()))\n";
  const std::string cmd =
      std::string(GRPO_PYTHON) + " " + d + "/read.py " + d + "/w.safetensors > " + d + "/py.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::map<std::string, std::string> py_dtype = {{"f32", "torch.float32"}, {"bf16", "torch.bfloat16"},
                                                 {"f16", "torch.float16"}, {"f64", "torch.float64"},
                                                 {"i64", "torch.int64"},   {"i32", "torch.int32"}};
  std::ifstream in(d + "/py.txt");
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, dtype, shape, sum;
    ls >> name >> dtype;
    std::getline(ls >> std::ws, shape, ']');
    ls >> sum;
    const torch::Tensor* t = nullptr;
    for (const auto& [k, v] : tensors)
      if (k == name) t = &v;
    ASSERT_NE(t, nullptr) << line;
    EXPECT_EQ(dtype, py_dtype[name]) << line;
    std::ostringstream want_shape;
    want_shape << t->sizes();
    EXPECT_EQ(shape + "]", want_shape.str()) << line;
    const double want = t->to(torch::kFloat64).sum().item<double>();
    EXPECT_NEAR(std::stod(sum), want, 1e-12 * (1 + std::abs(want))) << line;
    ++n;
  }
  EXPECT_EQ(n, tensors.size());
}

TEST(WeightsIo, RoundTripIsExactAndOrderIsKept) {
  const auto d = scratch("roundtrip");
  const auto tensors = every_dtype();
  write_named(d + "/w.safetensors", tensors, {{"step", "3"}});
  safetensors::File f(d + "/w.safetensors");
  ASSERT_EQ(f.tensors().size(), tensors.size());
  // The data section holds the tensors in the order given (the header is a JSON object, unordered).
  for (size_t i = 1; i < tensors.size(); ++i)
    EXPECT_LT(f.find(tensors[i - 1].first)->offset, f.find(tensors[i].first)->offset) << tensors[i].first;
  EXPECT_EQ(f.metadata().at("step"), "3");
  NamedTensors into;
  for (const auto& [k, v] : tensors) into.emplace_back(k, torch::full_like(v, 7));  // poisoned
  read_named(f, into, ExtraTensors::REJECT);
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(into[i].second.scalar_type(), tensors[i].second.scalar_type()) << tensors[i].first;
    EXPECT_TRUE(torch::equal(into[i].second, tensors[i].second)) << tensors[i].first;
  }
}

TEST(WeightsIo, WriteConvertsToTheRequestedDtype) {
  const auto d = scratch("convert");
  torch::manual_seed(12);
  const auto w = torch::randn({3, 4});
  write_named(d + "/w.safetensors", {{"w", w}}, {}, torch::kBFloat16);
  safetensors::File f(d + "/w.safetensors");
  ASSERT_EQ(f.tensors().at(0).dtype, "BF16");
  // Read into float32: the bf16 values, widened exactly.
  auto back = torch::zeros({3, 4});
  read_named(f, {{"w", back}}, ExtraTensors::REJECT);
  EXPECT_TRUE(torch::equal(back, w.to(torch::kBFloat16).to(torch::kFloat32)));
  // Into a parameter that requires grad: copied in place, no autograd history.
  auto p = torch::zeros({3, 4}).requires_grad_(true);
  read_named(f, {{"w", p}}, ExtraTensors::REJECT);
  EXPECT_TRUE(torch::equal(p.detach(), back));
  EXPECT_TRUE(p.is_leaf());
}

TEST(WeightsIo, MissingMisshapedAndExtraTensorsAreNamed) {
  const auto d = scratch("errors");
  const std::string path = d + "/w.safetensors";
  write_named(path, {{"a", torch::ones({2, 3})}, {"b", torch::ones({4})}}, {});
  safetensors::File f(path);
  auto msg = error_of([&] { read_named(f, {{"a", torch::zeros({2, 3})}, {"c", torch::zeros({1})}}, ExtraTensors::IGNORE); });
  EXPECT_NE(msg.find(path + ": tensor 'c' is missing"), std::string::npos) << msg;
  msg = error_of([&] { read_named(f, {{"a", torch::zeros({3, 2})}}, ExtraTensors::IGNORE); });
  EXPECT_NE(msg.find("tensor 'a' has shape [2, 3], the model expects [3, 2]"), std::string::npos) << msg;
  msg = error_of([&] { read_named(f, {{"a", torch::zeros({2, 3})}}, ExtraTensors::REJECT); });
  EXPECT_NE(msg.find("has tensor 'b' that the model does not have"), std::string::npos) << msg;
  auto a = torch::zeros({2, 3});
  EXPECT_NO_THROW(read_named(f, {{"a", a}}, ExtraTensors::IGNORE));
  EXPECT_TRUE(torch::equal(a, torch::ones({2, 3})));
}

TEST(WeightsIo, UnsupportedDtypesAreRefused) {
  const auto d = scratch("dtypes");
  EXPECT_THROW(write_named(d + "/bool.safetensors", {{"m", torch::ones({2}, torch::kBool)}}, {}), InputError);
  EXPECT_FALSE(stdfs::exists(d + "/bool.safetensors"));
  EXPECT_THROW(write_named(d + "/undef.safetensors", {{"u", torch::Tensor()}}, {}), InputError);
  // A valid file with a dtype torch_dtype() does not map (U8), written by the format layer directly.
  const uint8_t bytes[3] = {1, 2, 3};
  safetensors::write(d + "/u8.safetensors", {{"x", "U8", {3}, bytes, 3}});
  safetensors::File f(d + "/u8.safetensors");
  auto msg = error_of([&] { read_named(f, {{"x", torch::zeros({3})}}, ExtraTensors::REJECT); });
  EXPECT_NE(msg.find("tensor 'x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("U8"), std::string::npos) << msg;
}

}  // namespace
}  // namespace grpo::model
