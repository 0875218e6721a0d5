#pragma once
// The metrics of one optimizer step, each recorded with the reduction that combines it over
// micro-batches and over data-parallel ranks, and kept as tensors on the device until the step
// reads them: then all of them come to the host in one device-to-host copy (a .item() per value
// and micro-batch would force a host sync each).
//
//   kind  over this rank's adds                       over ranks
//   SUM   sum of the values                           sum             counts, throughputs
//   MEAN  sum of `sum` / sum of `count` (omitted      mean of the     losses, ratios, times
//         when the counts add up to <= 0)             ranks' values
//   MIN   smallest value                              minimum         .../min
//   MAX   largest value                               maximum         .../max
//
// The mean over ranks is over the ranks that have the key; it equals the global mean when every
// rank has an equal share (as every GRPO and SFT rank has), and is an approximation for the /std
// keys. Sums run in float64 in the order of the adds, starting from 0 (a tensor value is converted
// from its dtype exactly): the value a loop `double s = 0; s += x.item<double>();` would give. A key's
// double adds and tensor adds are summed apart (host + device), which is that same order when a key
// gets only one of the two between fetches.
#include <torch/torch.h>

#include <map>
#include <string>

namespace grpo::dist {
class Distributed;
}

namespace grpo::train {

enum class Reduction { SUM, MEAN, MIN, MAX };

class StepMetrics {
 public:
  /// Adds `value` to the key's sum. A tensor is a scalar (any float dtype, any device) and stays
  /// where it is until fetch().
  void add_sum(const std::string& key, double value);
  void add_sum(const std::string& key, const torch::Tensor& value);
  /// Adds `sum` and `count` to the key's weighted mean, sum(sums) / sum(counts): a mean over tokens
  /// stays exact when micro-batches hold different token counts. A plain value: count 1.
  void add_mean(const std::string& key, double sum, double count = 1.0);
  void add_mean(const std::string& key, const torch::Tensor& sum, const torch::Tensor& count);
  void add_mean(const std::string& key, const torch::Tensor& sum, double count = 1.0);
  void add_min(const std::string& key, double value);
  void add_max(const std::string& key, double value);

  /// Copies every tensor part added so far to the host, in one device-to-host copy, and adds it
  /// to the host part (a later add may bring new tensors; the next fetch copies those).
  void fetch();
  /// This rank's value of `key` (fetch()es first). Throws grpo::InternalError for an unknown key
  /// or a MEAN whose counts add up to <= 0.
  double value(const std::string& key);
  /// This rank's values (fetch()es first); MEAN keys with a zero count are left out.
  std::map<std::string, double> local();
  /// The values over all ranks of `dist` (null or world size 1: local()). Keys may differ between
  /// ranks (a reward counter that only some ranks saw): the union is kept. Collectives: one that
  /// compares a hash of the keys and their kinds; one SUM (SUM values; MEAN values and presence),
  /// one MIN, one MAX, each skipped when no key has that kind (the same on every rank); plus an
  /// all-gather of the key lists through the TCPStore in the steps where they differ.
  std::map<std::string, double> reduce(dist::Distributed* dist);

  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  Reduction kind(const std::string& key) const;
  bool empty() const { return entries_.empty(); }

 private:
  // A float64 accumulator: host part + device part (undefined until a tensor is added).
  struct Part {
    double host = 0.0;
    torch::Tensor device;  // [] float64, on the device of the first tensor added
    void add(double v) { host += v; }
    void add(const torch::Tensor& t);
  };
  struct Entry {
    Reduction kind = Reduction::SUM;
    Part sum;    // SUM, MEAN: the sum; MIN, MAX: the extreme (host only)
    Part count;  // MEAN only
  };
  Entry& entry(const std::string& key, Reduction kind);

  std::map<std::string, Entry> entries_;
};

/// total += x as a [] float64 tensor on x's device, without a graph (an undefined total starts at
/// x): a sum over micro-batches that stays on the device until the step's metrics are read.
void sum_into(torch::Tensor& total, const torch::Tensor& x);

}  // namespace grpo::train
