#include "grpo/train/step_metrics.h"

#include <cmath>
#include <functional>
#include <vector>

#include "grpo/dist/distributed.h"
#include "grpo/util/error.h"

namespace grpo::train {

namespace {
char kind_code(Reduction k) {
  switch (k) {
    case Reduction::SUM: return 's';
    case Reduction::MEAN: return 'm';
    case Reduction::MIN: return 'n';
    case Reduction::MAX: return 'x';
  }
  return '?';
}
}  // namespace

void sum_into(torch::Tensor& total, const torch::Tensor& x) {
  GRPO_CHECK(x.defined() && x.numel() == 1, "step metrics: a tensor value must be a scalar");
  auto v = x.detach().reshape({}).to(torch::kFloat64);  // [] float64, exact from float32/bf16
  total = total.defined() ? total + v.to(total.device()) : v;
}

void StepMetrics::Part::add(const torch::Tensor& t) { sum_into(device, t); }

StepMetrics::Entry& StepMetrics::entry(const std::string& key, Reduction kind) {
  auto [it, fresh] = entries_.try_emplace(key);
  if (fresh) it->second.kind = kind;
  GRPO_CHECK(it->second.kind == kind, "step metrics: '", key, "' recorded with two different reductions");
  return it->second;
}

void StepMetrics::add_sum(const std::string& key, double value) { entry(key, Reduction::SUM).sum.add(value); }
void StepMetrics::add_sum(const std::string& key, const torch::Tensor& value) {
  entry(key, Reduction::SUM).sum.add(value);
}

void StepMetrics::add_mean(const std::string& key, double sum, double count) {
  auto& e = entry(key, Reduction::MEAN);
  e.sum.add(sum);
  e.count.add(count);
}
void StepMetrics::add_mean(const std::string& key, const torch::Tensor& sum, const torch::Tensor& count) {
  auto& e = entry(key, Reduction::MEAN);
  e.sum.add(sum);
  e.count.add(count);
}
void StepMetrics::add_mean(const std::string& key, const torch::Tensor& sum, double count) {
  auto& e = entry(key, Reduction::MEAN);
  e.sum.add(sum);
  e.count.add(count);
}

// The extreme lives in sum.host; count.host counts the adds (the first one is taken as it is).
void StepMetrics::add_min(const std::string& key, double value) {
  auto& e = entry(key, Reduction::MIN);
  e.sum.host = e.count.host == 0 ? value : std::min(e.sum.host, value);
  e.count.host += 1;
}
void StepMetrics::add_max(const std::string& key, double value) {
  auto& e = entry(key, Reduction::MAX);
  e.sum.host = e.count.host == 0 ? value : std::max(e.sum.host, value);
  e.count.host += 1;
}

Reduction StepMetrics::kind(const std::string& key) const {
  auto it = entries_.find(key);
  GRPO_CHECK(it != entries_.end(), "step metrics: no metric '", key, "'");
  return it->second.kind;
}

void StepMetrics::fetch() {
  std::vector<Part*> parts;
  std::vector<torch::Tensor> values;
  for (auto& [k, e] : entries_)
    for (Part* p : {&e.sum, &e.count})
      if (p->device.defined()) {
        parts.push_back(p);
        values.push_back(values.empty() ? p->device : p->device.to(values.front().device()));
      }
  if (parts.empty()) return;
  const auto host = torch::stack(values).to(torch::kCPU);  // [n] float64: the one device-to-host copy
  const double* v = host.data_ptr<double>();
  for (size_t i = 0; i < parts.size(); ++i) {
    parts[i]->host += v[i];
    parts[i]->device = torch::Tensor();
  }
}

double StepMetrics::value(const std::string& key) {
  fetch();
  auto it = entries_.find(key);
  GRPO_CHECK(it != entries_.end(), "step metrics: no metric '", key, "'");
  const auto& e = it->second;
  if (e.kind != Reduction::MEAN) return e.sum.host;
  GRPO_CHECK(e.count.host > 0, "step metrics: the mean '", key, "' has no count");
  return e.sum.host / e.count.host;
}

std::map<std::string, double> StepMetrics::local() {
  fetch();
  std::map<std::string, double> out;
  for (const auto& [k, e] : entries_) {
    if (e.kind != Reduction::MEAN) out[k] = e.sum.host;
    else if (e.count.host > 0) out[k] = e.sum.host / e.count.host;
  }
  return out;
}

std::map<std::string, double> StepMetrics::reduce(dist::Distributed* dist) {
  auto m = local();
  if (!dist || dist->world_size() <= 1) return m;
  using dist::ReduceOp;
  // The union of the ranks' keys, each with its kind. One collective compares a hash of the key
  // lists; only when they differ are the lists gathered (through the TCPStore).
  std::string mine;
  for (const auto& [k, v] : m) mine += std::string(1, kind_code(entries_.at(k).kind)) + k + '\n';
  const auto h = static_cast<int64_t>(std::hash<std::string>{}(mine) >> 1);
  auto check = torch::tensor({h, -h}, torch::kInt64);
  dist->all_reduce(check, ReduceOp::MIN);
  const bool same = check[0].item<int64_t>() == h && check[1].item<int64_t>() == -h;  // CPU: no sync
  std::map<std::string, char> ops;
  for (const auto& s : same ? std::vector<std::string>{mine} : dist->all_gather_string(mine))
    for (size_t at = 0; at < s.size();) {
      size_t nl = s.find('\n', at);
      ops.emplace(s.substr(at + 1, nl - at - 1), s[at]);
      at = nl + 1;
    }
  // Then three collectives: sums (SUM keys: value; MEAN keys: value and presence, so a key missing
  // on a rank is the mean over the ranks that have it), minima and maxima (missing: +-inf).
  std::vector<double> sums, mins, maxs;
  for (const auto& [k, op] : ops) {
    auto it = m.find(k);
    const bool have = it != m.end();
    const double v = have ? it->second : 0.0;
    if (op == 's') sums.push_back(v);
    else if (op == 'm') sums.push_back(v), sums.push_back(have ? 1.0 : 0.0);
    else if (op == 'n') mins.push_back(have ? v : INFINITY);
    else maxs.push_back(have ? v : -INFINITY);
  }
  auto all_reduce = [&](std::vector<double>& v, ReduceOp op) {
    if (v.empty()) return;
    auto t = torch::tensor(v, torch::kFloat64);
    dist->all_reduce(t, op);
    std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), v.begin());
  };
  all_reduce(sums, ReduceOp::SUM);
  all_reduce(mins, ReduceOp::MIN);
  all_reduce(maxs, ReduceOp::MAX);
  m.clear();
  size_t is = 0, in = 0, ix = 0;
  for (const auto& [k, op] : ops) {
    if (op == 's') m[k] = sums[is++];
    else if (op == 'm') m[k] = sums[is] / sums[is + 1], is += 2;
    else if (op == 'n') m[k] = mins[in++];
    else m[k] = maxs[ix++];
  }
  return m;
}

}  // namespace grpo::train
