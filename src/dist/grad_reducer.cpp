#include "grpo/dist/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "grpo/util/error.h"

namespace grpo::dist {

GradReducerOptions GradReducerOptions::from_config(const config::DistributedConfig& cfg) {
  GradReducerOptions o;
  // MiB as DDP counts them (bucket_cap_mb * 1024 * 1024); a cap below one byte still means
  // "one parameter per bucket", not zero.
  o.bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(std::llround(cfg.ddp_bucket_cap_mb * double(1 << 20))));
  o.overlap = cfg.overlap_grad_reduce;
  return o;
}

GradientReducer::GradientReducer(std::shared_ptr<Distributed> dist, std::vector<torch::Tensor> params,
                                 GradReducerOptions opts)
    : dist_(std::move(dist)), opts_(opts) {
  GRPO_CHECK(dist_ != nullptr);
  GRPO_CHECK(opts_.bucket_bytes > 0, "bucket_bytes ", opts_.bucket_bytes);
  for (auto& p : params)
    if (p.requires_grad()) params_.push_back(p);
  if (!dist_->has_group()) return;

  // Buckets in reverse parameter order: backward produces the last layers' gradients first, so
  // the first buckets fill (and start communicating) early.
  bucket_of_.assign(params_.size(), -1);
  ready_.assign(params_.size(), 0);
  size_t bytes = 0;
  for (int i = static_cast<int>(params_.size()) - 1; i >= 0; --i) {
    const auto& p = params_[i];
    bool fresh = buckets_.empty();
    if (!fresh) {
      const auto& first = params_[buckets_.back().params.front()];
      fresh = first.scalar_type() != p.scalar_type() || first.device() != p.device() ||
              bytes + p.nbytes() > static_cast<size_t>(opts_.bucket_bytes);
    }
    if (fresh) {
      buckets_.emplace_back();
      bytes = 0;
    }
    auto& b = buckets_.back();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(i);
    bucket_of_[i] = static_cast<int>(buckets_.size()) - 1;
    bytes += p.nbytes();
  }
  for (auto& b : buckets_) {
    const auto& last = params_[b.params.back()];
    const auto& first = params_[b.params.front()];
    b.flat = torch::empty({b.offsets.back() + last.numel()}, first.options().requires_grad(false));
  }
  reset_step();

  if (opts_.overlap) {
    // AccumulateGrad's post hooks run after the gradient has been added to .grad (the hook DDP's
    // Reducer uses). The parameter keeps only a weak reference to its accumulator, so we hold it.
    for (int i = 0; i < static_cast<int>(params_.size()); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(params_[i]);
      GRPO_CHECK(acc != nullptr, "parameter ", i, " is not a leaf that accumulates gradients");
      auto key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            on_grad_ready(i);
            return outputs;
          }));
      hooks_.emplace_back(std::move(acc), key);
    }
  }
}

GradientReducer::~GradientReducer() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
  // Outstanding works must not outlive their buffers' users; wait quietly.
  for (auto& b : buckets_) {
    if (b.work) {
      try {
        b.work->wait();
      } catch (const std::exception&) {
      }
    }
  }
}

int GradientReducer::launched_this_step() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(next_launch_);
}

std::string GradientReducer::describe() const {
  int64_t bytes = 0, largest = 0;
  for (const auto& b : buckets_) {
    bytes += static_cast<int64_t>(b.flat.nbytes());
    largest = std::max<int64_t>(largest, static_cast<int64_t>(b.flat.nbytes()));
  }
  return str("gradient all-reduce: ", buckets_.size(), " bucket(s) for ", params_.size(), " parameter tensors (",
             bytes, " bytes, largest bucket ", largest, " bytes; distributed.ddp_bucket_cap_mb = ",
             static_cast<double>(opts_.bucket_bytes) / double(1 << 20), "), ",
             opts_.overlap ? "launched during backward as each bucket's gradients are ready"
                           : "launched after backward (distributed.overlap_grad_reduce = false)");
}

std::vector<int64_t> GradientReducer::bucket_numels() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b.flat.numel());
  return out;
}

void GradientReducer::set_sync(bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_ = sync;
}

void GradientReducer::reset_step() {
  for (auto& b : buckets_) {
    b.pending = static_cast<int>(b.params.size());
    b.launched = false;
    b.work.reset();
  }
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
}

void GradientReducer::on_grad_ready(int i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) return;
  if (ready_[i]) {
    // Throwing inside backward would leave autograd half done; report at synchronize().
    if (hook_error_.empty())
      hook_error_ = str("gradient of parameter ", i, " was accumulated twice in one step with sync on; call "
                        "set_sync(false) for all micro-batches but the last");
    return;
  }
  ready_[i] = 1;
  auto& b = buckets_[bucket_of_[i]];
  --b.pending;
  launch_ready_prefix();
}

void GradientReducer::launch_ready_prefix() {
  // Launch strictly in bucket order: every rank must issue the same collectives in the same order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(buckets_[next_launch_++]);
}

void GradientReducer::launch(Bucket& b) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < b.params.size(); ++k) {
    const auto& p = params_[b.params[k]];
    auto dst = b.flat.narrow(0, b.offsets[k], p.numel());
    const auto& g = p.grad();
    if (g.defined())
      dst.copy_(g.reshape(-1));
    else
      dst.zero_();  // unused on this rank this step: contributes nothing to the sum
  }
  std::vector<at::Tensor> v{b.flat};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(dist_->timeout_s() * 1000));
  b.work = dist_->c10d_backend()->allreduce(v, o);
  b.launched = true;
}

void GradientReducer::synchronize() {
  if (!dist_->has_group()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const auto t0 = std::chrono::steady_clock::now();
  for (; next_launch_ < buckets_.size(); ++next_launch_) launch(buckets_[next_launch_]);
  for (auto& b : buckets_) dist_->wait(b.work, "gradient all_reduce");
  const auto t1 = std::chrono::steady_clock::now();
  last_wait_s_ = std::chrono::duration<double>(t1 - t0).count();
  if (!hook_error_.empty()) {
    std::string e = std::move(hook_error_);
    hook_error_.clear();
    reset_step();
    throw InternalError(e);
  }
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b.flat.div_(dist_->world_size());
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = params_[b.params[k]];
      auto avg = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(avg);
      else
        p.mutable_grad() = avg.clone();
    }
  }
  reset_step();
}

}  // namespace grpo::dist
