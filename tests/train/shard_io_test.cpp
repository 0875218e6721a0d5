// Sharded checkpoint tensors (train/shard_io.h, train/checkpoint.h): pieces written by W ranks in a
// flat-buffer layout (as ZeRO-3 shards a block: the tensors concatenated, padded to a multiple of
// W, rank r holding [r S, (r+1) S)) read back by any other world size; uneven and padded ranges;
// bad shards named with what was expected; the first checkpoint format still loads.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "grpo/model/weights_io.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/shard_io.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace {

namespace sfs = std::filesystem;
using grpo::train::LocalShards;
using grpo::train::ShardPiece;
using grpo::train::ShardReader;
using nlohmann::json;

void remove_tree(const sfs::path& d) { (void)std::system(("rm -rf '" + d.string() + "'").c_str()); }

std::string fresh_dir(const std::string& name) {
  auto d = sfs::temp_directory_path() / ("grpo_shard_test_" + name + "_" + std::to_string(::getpid()));
  remove_tree(d);
  sfs::create_directories(d);
  return d.string();
}

// The tensors of a toy model: odd sizes so that no shard boundary falls on a tensor boundary, and a
// bf16 one (stored as held).
std::vector<std::pair<std::string, torch::Tensor>> toy_tensors() {
  torch::manual_seed(11);
  return {{"embed.weight", torch::randn({7, 5})},
          {"layers.0.norm.weight", torch::randn({5})},
          {"layers.0.mlp.weight", torch::randn({3, 5, 2})},
          {"head.bias_bf16", torch::randn({9}).to(torch::kBFloat16)},
          {"scalar", torch::randn({})}};
}

int64_t total_numel(const std::vector<std::pair<std::string, torch::Tensor>>& ts) {
  int64_t n = 0;
  for (const auto& [k, t] : ts) n += t.numel();
  return n;
}

// Rank `rank`'s pieces when the flat concatenation [0, total) is cut at `bounds` (bounds[r] ..
// bounds[r+1] is rank r's range; past `total` it is padding, which holds no tensor and is not written).
LocalShards pieces_of(const std::vector<std::pair<std::string, torch::Tensor>>& ts, const std::vector<int64_t>& bounds,
                      int rank) {
  LocalShards s;
  int64_t at = 0;
  for (const auto& [k, t] : ts) {
    const int64_t lo = std::max(at, bounds[rank]), hi = std::min(at + t.numel(), bounds[rank + 1]);
    if (lo < hi) s.weights.push_back({k, t.sizes().vec(), lo - at, hi - at, t.reshape({-1}).narrow(0, lo - at, hi - lo)});
    at += t.numel();
  }
  return s;
}

// Equal ranges of ceil(total / world) elements (the last one padded).
std::vector<int64_t> even_bounds(int64_t total, int world) {
  const int64_t S = (total + world - 1) / world;
  std::vector<int64_t> b;
  for (int r = 0; r <= world; ++r) b.push_back(r * S);
  return b;
}

// Writes what `world` ranks cut at `bounds` hold into `dir` with its shards.json, as the collective
// save does (each rank's files, then rank 0's metadata).
void write_layout(const std::string& dir, const std::vector<std::pair<std::string, torch::Tensor>>& ts,
                  const std::vector<int64_t>& bounds) {
  const int world = static_cast<int>(bounds.size()) - 1;
  std::vector<grpo::train::WrittenShardFile> files;
  for (int r = 0; r < world; ++r)
    for (auto& f : grpo::train::write_local_shards(dir, pieces_of(ts, bounds, r), r, world, world == 1)) files.push_back(f);
  grpo::fs::atomic_write(dir + "/shards.json", grpo::train::shards_metadata(files, {}, world, "full").dump());
}

// Every rank of the new layout fills its flat range (padding stays 0) from the reader; the ranges
// concatenated must be the original tensors, bit for bit.
void expect_reshards_to(const ShardReader& r, const std::vector<std::pair<std::string, torch::Tensor>>& ts, int world) {
  const int64_t total = total_numel(ts);
  auto b = even_bounds(total, world);
  for (int rank = 0; rank < world; ++rank) {
    auto mine = pieces_of(ts, b, rank);
    for (const auto& p : mine.weights) {
      auto got = torch::zeros({p.end - p.begin}, p.data.options());
      r.read_into(p.key, p.begin, got);
      EXPECT_TRUE(torch::equal(got, p.data)) << world << " ranks, rank " << rank << " " << p.key;
    }
  }
  for (const auto& [k, t] : ts) {
    auto whole = r.read_whole(k);
    EXPECT_EQ(whole.sizes(), t.sizes()) << k;
    EXPECT_EQ(whole.scalar_type(), t.scalar_type()) << k;
    EXPECT_TRUE(torch::equal(whole, t)) << k;
  }
}

struct Layout {
  const char* name;
  int from;
  std::vector<int> to;
};

TEST(ShardIo, FlatLayoutsReshardToAnyWorldSize) {
  const auto ts = toy_tensors();
  const int64_t total = total_numel(ts);  // 35 + 5 + 30 + 9 + 1 = 80
  ASSERT_EQ(total, 80);
  for (const auto& l : {Layout{"1to2", 1, {2}}, Layout{"2to3", 2, {3, 1}}, Layout{"3to1", 3, {1, 2}}, Layout{"3to7", 3, {7}}}) {
    const auto dir = fresh_dir(l.name);
    write_layout(dir, ts, even_bounds(total, l.from));  // 3 ranks: 27 + 27 + 26 and 1 padding element
    EXPECT_EQ(grpo::train::verify_shards(dir), "") << l.name;
    ShardReader r(dir);
    EXPECT_EQ(r.world_size(), l.from);
    for (int w : l.to) expect_reshards_to(r, ts, w);
    // One file per rank, under the sharded names (1 rank: the plain model.safetensors).
    for (int rank = 0; rank < l.from; ++rank) {
      char name[64];
      std::snprintf(name, sizeof name, "/model-%05d-of-%05d.safetensors", rank, l.from);
      EXPECT_EQ(sfs::exists(dir + (l.from == 1 ? std::string("/model.safetensors") : name)), true) << l.name << " " << name;
    }
  }
}

TEST(ShardIo, UnevenRangesAndPiecesOfOneElement) {
  // Ranks of very different lengths (one holds a single element, one holds only the padding).
  const auto ts = toy_tensors();
  const auto dir = fresh_dir("uneven");
  write_layout(dir, ts, {0, 1, 2, 40, 79, 80, 96});
  ASSERT_EQ(grpo::train::verify_shards(dir), "");
  ShardReader r(dir);
  for (int w : {1, 2, 3, 5}) expect_reshards_to(r, ts, w);
  // A range that crosses every piece boundary, and one inside one piece.
  auto got = r.read("embed.weight", 0, 35);
  EXPECT_TRUE(torch::equal(got, ts[0].second.reshape({-1})));
  EXPECT_TRUE(torch::equal(r.read("layers.0.mlp.weight", 3, 4), ts[2].second.reshape({-1}).narrow(0, 3, 1)));
  EXPECT_THROW(r.read("embed.weight", 30, 36), grpo::InputError);
  EXPECT_THROW(r.read("nope", 0, 1), grpo::InputError);
  // read_into converts to the destination's dtype.
  auto as_double = torch::zeros({9}, torch::kFloat64);
  r.read_into("head.bias_bf16", 0, as_double);
  EXPECT_TRUE(torch::equal(as_double, ts[3].second.to(torch::kFloat64)));
}

// Shards of `world` ranks, for the bad-input cases.
std::string layout_dir(const std::string& name, int world = 2) {
  const auto dir = fresh_dir(name);
  write_layout(dir, toy_tensors(), even_bounds(80, world));
  return dir;
}

TEST(ShardIo, BadShardsAreNamedWithWhatWasExpected) {
  {
    const auto dir = layout_dir("missing");
    sfs::remove(dir + "/model-00001-of-00002.safetensors");
    EXPECT_EQ(grpo::train::verify_shards(dir), "missing shard file model-00001-of-00002.safetensors (listed in shards.json)");
    try {
      ShardReader r(dir);
      FAIL();
    } catch (const grpo::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
    }
  }
  {
    const auto dir = layout_dir("truncated");
    const auto f = dir + "/model-00001-of-00002.safetensors";
    sfs::resize_file(f, sfs::file_size(f) - 8);
    const auto problem = grpo::train::verify_shards(dir);
    EXPECT_NE(problem.find("model-00001-of-00002.safetensors"), std::string::npos) << problem;
  }
  {
    // 3 ranks of 27 elements: rank 1 holds mlp [0, 14), rank 2 [14, 30). The metadata moved the
    // boundary by one (coverage still complete), so rank 1's file holds fewer than it says.
    const auto dir = layout_dir("mismatch", 3);
    auto j = json::parse(grpo::fs::read_file(dir + "/shards.json"));
    for (auto& p : j["files"][1]["pieces"])
      if (p[0] == "layers.0.mlp.weight") p[2] = 15;
    for (auto& p : j["files"][2]["pieces"])
      if (p[0] == "layers.0.mlp.weight") p[1] = 15;
    grpo::fs::atomic_write(dir + "/shards.json", j.dump());
    EXPECT_EQ(grpo::train::verify_shards(dir),
              "model-00001-of-00003.safetensors: 'layers.0.mlp.weight' holds 14 elements [14], shards.json says [0, 15) of "
              "[3, 5, 2] (15 elements)");
  }
  {
    // A gap: elements of a tensor that no file holds.
    const auto dir = layout_dir("gap");
    auto j = json::parse(grpo::fs::read_file(dir + "/shards.json"));
    auto& ps = j["files"][1]["pieces"];
    for (size_t i = 0; i < ps.size(); ++i)
      if (ps[i][0] == "head.bias_bf16") ps.erase(i);
    grpo::fs::atomic_write(dir + "/shards.json", j.dump());
    EXPECT_EQ(grpo::train::verify_shards(dir), "tensor 'head.bias_bf16' (9 elements): elements [0, 9) are in no shard file");
  }
  {
    // Malformed metadata: a piece whose begin is null (the "type must be number, but is null" a
    // damaged file gave before) names the file and the form expected; the reader names the directory.
    const auto dir = layout_dir("malformed");
    auto j = json::parse(grpo::fs::read_file(dir + "/shards.json"));
    j["files"][0]["pieces"][0][1] = nullptr;
    grpo::fs::atomic_write(dir + "/shards.json", j.dump());
    EXPECT_EQ(grpo::train::verify_shards(dir), "shards.json: a piece of model-00000-of-00002.safetensors is "
                                                   "[\"embed.weight\",null,35], expected [key, begin, end] with integer begin and end");
    try {
      ShardReader r(dir);
      FAIL() << "a malformed shards.json was accepted";
    } catch (const grpo::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "': shards.json: a piece of"), std::string::npos) << e.what();
    }
    j = json::parse(grpo::fs::read_file(dir + "/shards.json"));
    j.erase("world_size");
    grpo::fs::atomic_write(dir + "/shards.json", j.dump());
    EXPECT_EQ(grpo::train::verify_shards(dir), "shards.json: expected \"world_size\" as a positive integer");
    grpo::fs::atomic_write(dir + "/shards.json", "{\"format\": \"grpo-sharded\", ");
    EXPECT_EQ(grpo::train::verify_shards(dir).rfind("unreadable shards.json: ", 0), 0u) << grpo::train::verify_shards(dir);
  }
}

// A checkpoint of the first format (before shards.json): model.safetensors, a torch::serialize
// optimizer archive, state.json and a manifest, written here file by file as the old writer did.
TEST(ShardIo, FirstFormatCheckpointStillLoads) {
  torch::manual_seed(5);
  const auto dir = fresh_dir("first_format") + "/checkpoint-00000007";
  sfs::create_directories(dir);
  auto w = torch::randn({4, 3}).requires_grad_(true);
  torch::optim::AdamW opt({w}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  opt.zero_grad();
  (w * w).sum().backward();
  opt.step();
  const auto saved = w.detach().clone();  // [4, 3] the checkpoint's weights
  grpo::model::write_named(dir + "/model.safetensors", {{"layer.weight", w}}, {{"format", "pt"}});
  {
    torch::serialize::OutputArchive ar;
    opt.save(ar);
    ar.save_to(dir + "/optimizer.pt");
  }
  const json state{{"format_version", 1}, {"step", 7}, {"stage", "grpo"}, {"data", {{"epoch", 0}, {"index", 3}}},
                   {"scheduler", json::object()}, {"extra", json::object()}};
  grpo::fs::atomic_write(dir + "/state.json", state.dump());
  grpo::fs::atomic_write(dir + "/config.yaml", "");
  grpo::fs::atomic_write(dir + "/metrics.jsonl", "");
  json manifest{{"format_version", 1}, {"step", 7}, {"files", json::object()}};
  for (const char* f : {"model.safetensors", "optimizer.pt", "state.json", "config.yaml", "metrics.jsonl"})
    manifest["files"][f] = {{"sha256", grpo::train::sha256_file(dir + "/" + f)}, {"bytes", sfs::file_size(dir + "/" + f)}};
  grpo::fs::atomic_write(dir + "/manifest.json", manifest.dump());
  grpo::fs::atomic_write(dir + "/COMPLETE", "step 7\n");
  ASSERT_EQ(grpo::train::verify_checkpoint(dir), "");
  EXPECT_FALSE(grpo::train::is_sharded_checkpoint(dir));

  auto w2 = torch::zeros({4, 3}).requires_grad_(true);
  torch::optim::AdamW opt2({w2}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  const auto loaded = grpo::train::load_checkpoint(dir, {{"layer.weight", w2}}, &opt2);
  EXPECT_EQ(loaded.state.step, 7);
  EXPECT_TRUE(torch::equal(w2, w));
  // The optimizer state came back: one more identical step on both gives identical weights.
  for (auto* o : {&opt, &opt2}) o->zero_grad();
  (w * w).sum().backward();
  (w2 * w2).sum().backward();
  opt.step();
  opt2.step();
  EXPECT_TRUE(torch::equal(w2, w));
  // And it loads as a policy's weights (model.path, grpo model convert).
  auto w3 = torch::zeros({4, 3});
  grpo::train::read_weights(dir, {{"layer.weight", w3}});
  EXPECT_TRUE(torch::equal(w3, saved));
  remove_tree(sfs::path(dir).parent_path());
}

// The sharded format as the policy loader reads it: the pieces of 3 ranks reassembled into whole
// weights; a weight the directory lacks is named.
TEST(ShardIo, ReadWeightsReassemblesPieces) {
  const auto ts = toy_tensors();
  const auto dir = layout_dir("read_weights", 3);
  grpo::train::NamedTensors dst;
  for (const auto& [k, t] : ts) dst.emplace_back(k, torch::zeros_like(t));
  grpo::train::read_weights(dir, dst);
  for (size_t i = 0; i < ts.size(); ++i) EXPECT_TRUE(torch::equal(dst[i].second, ts[i].second)) << ts[i].first;
  try {
    grpo::train::read_weights(dir, {{"not.there", torch::zeros({2})}});
    FAIL() << "a missing weight was accepted";
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("has no weight 'not.there'"), std::string::npos) << e.what();
  }
  remove_tree(dir);
}

}  // namespace
