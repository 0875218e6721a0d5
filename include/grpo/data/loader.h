#pragma once
// Iterating a dataset epoch after epoch, shuffled or not, from a position that a checkpoint saves.
#include <cstdint>
#include <vector>

#include "grpo/data/dataset.h"

namespace grpo::data {

/// Where the loader is: the next record is order(epoch)[index]. Saved in checkpoints.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const LoaderPosition&) const = default;
};

/// Hands out records of a Dataset in epoch order; the order of each epoch is epoch_permutation(size,
/// seed, epoch) when shuffling, file order otherwise. Epochs roll over transparently.
class Loader {
 public:
  /// Throws grpo::InputError when the dataset is empty. The dataset must outlive the loader.
  Loader(const Dataset& dataset, uint64_t seed, bool shuffle);

  /// The next record; advances the position.
  const Record& next();
  /// The next n records (may span an epoch boundary).
  std::vector<const Record*> next_batch(int64_t n);
  /// Dataset index of the record next() would return.
  int64_t peek_index() const;

  LoaderPosition position() const { return pos_; }
  /// Restores a saved position. Throws grpo::InputError when epoch < 0 or index is not in
  /// [0, size] (a checkpoint from a different dataset).
  void set_position(const LoaderPosition& pos);

 private:
  void ensure_order(int64_t epoch) const;
  const Dataset& ds_;
  uint64_t seed_;
  bool shuffle_;
  LoaderPosition pos_;
  mutable int64_t order_epoch_ = -1;
  mutable std::vector<int64_t> order_;
};

}  // namespace grpo::data
