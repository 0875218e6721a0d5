#pragma once
// Sharded checkpoint tensors: every rank writes the pieces it holds, one metadata file says where
// every element of every tensor is, and any rank of any later world size reads back any flat range
// of any tensor from just the pieces that overlap it. Used by train/checkpoint for the weights and
// the AdamW moments of every sharding mode (`distributed.sharding: none` is the layout where one
// rank holds every tensor whole). docs/checkpoints.md, "Sharded layout".
//
// A tensor is addressed by its key and flat row-major element index: key "model.norm.weight" for a
// weight, "exp_avg/<param>" and "exp_avg_sq/<param>" for the AdamW moments. A piece is a flat
// range [begin, end) of one tensor, stored in a safetensors file under the tensor's key, with the
// tensor's own shape when it is whole and as a 1-D [end - begin] entry otherwise (a file holds at
// most one piece of each tensor). The metadata, shards.json:
//   {"format": "grpo-sharded", "version": 1, "world_size": W, "sharding": "none|optimizer|full",
//    "tensors": {key: {"shape": [..], "dtype": "F32"}},
//    "files": [{"file": "model-00001-of-00002.safetensors", "rank": 1,
//               "pieces": [[key, begin, end], ...]}],
//    "optimizer_step": {param: steps}}            // AdamW steps per parameter; absent: no state
// Every element of every tensor is in exactly one piece (checked by verify_shards): the padding of
// a flat sharded buffer is never written.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace grpo::train {

/// Name of the metadata file inside a checkpoint directory.
inline constexpr const char* kShardsMeta = "shards.json";

/// The part of one tensor a rank holds.
struct ShardPiece {
  std::string key;             // tensor key (weight name, or "exp_avg/<param>", "exp_avg_sq/<param>")
  std::vector<int64_t> shape;  // the whole tensor's shape
  int64_t begin = 0, end = 0;  // flat row-major element range [begin, end) held here
  torch::Tensor data;          // end - begin elements (any shape, any device); stored in its dtype
};

/// Everything one rank contributes to a checkpoint. In `none` mode rank 0 holds every tensor whole
/// and the other ranks hold nothing (replicas are written once).
struct LocalShards {
  std::vector<ShardPiece> weights;    // model weights (parameters and buffers), their dtype
  std::vector<ShardPiece> optimizer;  // exp_avg/<param> and exp_avg_sq/<param>, float32
  std::map<std::string, int64_t> optimizer_step;  // AdamW steps per parameter name (0 / absent: no state yet)
};

/// Key of an AdamW moment of parameter `param`: "exp_avg/<param>" or "exp_avg_sq/<param>".
std::string exp_avg_key(const std::string& param);
std::string exp_avg_sq_key(const std::string& param);

/// One piece as a file records it: tensor key, range, and the whole tensor's shape and dtype.
struct PieceRecord {
  std::string key;
  int64_t begin = 0, end = 0;
  std::vector<int64_t> shape;
  std::string dtype;  // safetensors name
};

/// One file a rank wrote: name inside the checkpoint directory, pieces, size and SHA-256.
struct WrittenShardFile {
  std::string file;
  int rank = 0;
  std::vector<PieceRecord> pieces;
  uint64_t bytes = 0;
  std::string sha256;
  nlohmann::json to_json() const;
  static WrittenShardFile from_json(const nlohmann::json& j);
};

/// Writes this rank's pieces into `dir` (fsync'ed, durable): model[-RRRRR-of-NNNNN].safetensors for
/// the weights and optimizer[-RRRRR-of-NNNNN].safetensors for the moments; `single_writer` (only
/// one rank holds pieces) gives the plain names, so that an unsharded checkpoint's
/// model.safetensors is an ordinary weights file. Ranks without pieces write nothing. Throws
/// grpo::InputError for a piece whose range or element count does not fit its shape, two pieces of
/// one tensor, or a file that cannot be written.
std::vector<WrittenShardFile> write_local_shards(const std::string& dir, const LocalShards& mine, int rank,
                                                 int world_size, bool single_writer);

/// The metadata (shards.json) for the files all ranks wrote: tensors (shape and dtype from the
/// pieces, on which ranks must agree), files, and the AdamW steps (merged over ranks). Throws
/// grpo::InputError when two pieces disagree about a tensor's shape or dtype.
nlohmann::json shards_metadata(const std::vector<WrittenShardFile>& files,
                               const std::map<std::string, int64_t>& optimizer_step, int world_size,
                               const std::string& sharding);

/// Metadata of one tensor, as recorded.
struct TensorMeta {
  std::vector<int64_t> shape;
  std::string dtype;  // safetensors name
  int64_t numel = 0;
};

/// Checks `dir`'s shards.json against the shard files: every listed file exists and its
/// safetensors header holds each listed piece under its key with the tensor's dtype and the
/// piece's element count, and every tensor is covered exactly once (no gap, no overlap). Returns ""
/// when consistent, else one line naming the file (or tensor) and what was expected. Sizes and
/// checksums are the manifest's job (verify_checkpoint).
std::string verify_shards(const std::string& dir);

/// Reads flat ranges of the tensors of a sharded checkpoint, opening (memory-mapping) only the
/// files whose pieces overlap what is asked.
class ShardReader {
 public:
  /// Parses and checks `dir`/shards.json (verify_shards). Throws grpo::InputError naming the
  /// directory and the problem.
  explicit ShardReader(const std::string& dir);
  ~ShardReader();
  ShardReader(ShardReader&&) noexcept;
  ShardReader& operator=(ShardReader&&) = delete;

  const std::string& dir() const { return dir_; }
  int world_size() const { return world_size_; }
  const std::string& sharding() const { return sharding_; }
  /// The tensor `key`, or nullptr.
  const TensorMeta* find(const std::string& key) const;
  const std::map<std::string, TensorMeta>& tensors() const { return tensors_; }
  /// AdamW steps recorded for parameter `param`; 0 when it has no optimizer state.
  int64_t optimizer_step(const std::string& param) const;
  /// Copies elements [begin, begin + dst.numel()) of tensor `key` into `dst` (any shape, device
  /// and dtype: converted by copy_). Throws grpo::InputError when the key is unknown or the range
  /// exceeds the tensor.
  void read_into(const std::string& key, int64_t begin, const torch::Tensor& dst) const;
  /// Elements [begin, end) of `key` as a new 1-D CPU tensor in the stored dtype.
  torch::Tensor read(const std::string& key, int64_t begin, int64_t end) const;
  /// The whole tensor, in its shape (CPU, stored dtype).
  torch::Tensor read_whole(const std::string& key) const;

 private:
  struct Piece {
    size_t file;
    int64_t begin, end;
  };
  struct Impl;
  std::string dir_;
  int world_size_ = 1;
  std::string sharding_;
  std::map<std::string, TensorMeta> tensors_;
  std::map<std::string, std::vector<Piece>> pieces_;  // per key, sorted by begin
  std::map<std::string, int64_t> steps_;
  std::unique_ptr<Impl> impl_;  // file names and lazily mapped files
};

}  // namespace grpo::train
