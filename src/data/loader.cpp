#include "grpo/data/loader.h"

#include "grpo/data/shuffle.h"
#include "grpo/util/error.h"

namespace grpo::data {

Loader::Loader(const Dataset& dataset, uint64_t seed, bool shuffle) : ds_(dataset), seed_(seed), shuffle_(shuffle) {
  GRPO_REQUIRE(ds_.size() > 0, "data loader: the dataset is empty");
}

void Loader::ensure_order(int64_t epoch) const {
  if (order_epoch_ == epoch) return;
  const auto n = static_cast<int64_t>(ds_.size());
  if (shuffle_) {
    order_ = epoch_permutation(n, seed_, epoch);
  } else {
    order_.resize(n);
    for (int64_t i = 0; i < n; ++i) order_[i] = i;
  }
  order_epoch_ = epoch;
}

int64_t Loader::peek_index() const {
  // At the end of an epoch the next record is the first of the next epoch.
  const bool rolled = pos_.index >= static_cast<int64_t>(ds_.size());
  ensure_order(rolled ? pos_.epoch + 1 : pos_.epoch);
  return order_[rolled ? 0 : pos_.index];
}

const Record& Loader::next() {
  const int64_t i = peek_index();
  if (pos_.index >= static_cast<int64_t>(ds_.size())) pos_ = {pos_.epoch + 1, 0};
  ++pos_.index;
  return ds_[i];
}

std::vector<const Record*> Loader::next_batch(int64_t n) {
  std::vector<const Record*> out;
  out.reserve(n);
  for (int64_t k = 0; k < n; ++k) out.push_back(&next());
  return out;
}

void Loader::set_position(const LoaderPosition& pos) {
  GRPO_REQUIRE(pos.epoch >= 0 && pos.index >= 0 && pos.index <= static_cast<int64_t>(ds_.size()),
               "data loader: saved position (epoch ", pos.epoch, ", index ", pos.index,
               ") does not fit a dataset of ", ds_.size(), " records (was the checkpoint made with another dataset?)");
  pos_ = pos;
}

}  // namespace grpo::data
