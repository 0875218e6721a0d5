#pragma once
// Private to src/dist: the Sharder's flat unit (sharding.cpp, sharding_state.cpp).
#include "grpo/dist/sharding.h"

namespace grpo::dist {

// One flat unit: its parameters laid end to end in a float32 buffer of `padded` elements, of which
// this rank owns [begin, begin + shard_numel).
struct Sharder::Unit {
  struct Entry {
    std::string name;
    torch::Tensor param;  // the model's parameter (empty storage while a block unit is released)
    std::vector<int64_t> shape;
    int64_t offset = 0, numel = 0;
    bool decay = false;  // matrices only, as the trainer's AdamW groups
  };
  std::vector<Entry> entries;
  bool block = false;
  int64_t numel = 0, padded = 0, shard_numel = 0, begin = 0;
  torch::Tensor shard;                 // [S] float32 master slice (a leaf requiring grad for block units)
  torch::Tensor grad;                  // [S] float32: the averaged gradient at step()
  torch::Tensor exp_avg, exp_avg_sq;   // [S] float32, after the first step
  int64_t step = 0;
  torch::Tensor send, gather_buf;      // gather source (bf16 copy when bf16_gather) and destination [padded]
  torch::Tensor gathered;              // [padded] float32 whole parameters while materialized
  c10::intrusive_ptr<c10d::Work> pending;
  bool whole = true;
  bool low_precision = false;          // whole as bf16 views of gather_buf (the rollout's copy under autocast)
};

}  // namespace grpo::dist
