#include "grpo/dist/distributed.h"

#include <ATen/DeviceAccelerator.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>

#include "grpo/dist/fingerprint.h"
#include "host_label.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"
#include "gloo_backend.h"

#if defined(USE_C10D_NCCL) && !defined(GRPO_DIST_NO_NCCL)
#define GRPO_DIST_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace grpo::dist {
namespace {

std::chrono::milliseconds to_ms(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0)); }

// c10 errors carry a C++ backtrace after the message; one or two lines are what a user can read.
std::string short_message(const std::exception& e) {
  std::string m;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e))
    m = ce->what_without_backtrace();
  else
    m = e.what();
  size_t cut = m.find("\nException raised from");
  if (cut != std::string::npos) m.resize(cut);
  if (m.size() > 600) m = m.substr(0, 600) + "...";
  for (char& c : m)
    if (c == '\n') c = ' ';
  return m;
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::MIN: return c10d::ReduceOp::MIN;
    case ReduceOp::MAX: return c10d::ReduceOp::MAX;
    default: return c10d::ReduceOp::SUM;  // MEAN = SUM / world size: Gloo has no AVG
  }
}

torch::Device resolve_device(const std::string& spec, const LaunchEnv& env) {
  const bool cuda = torch::cuda::is_available();
  torch::Device dev(torch::kCPU);
  if (spec == "cpu") return dev;
  if (spec == "auto") {
    if (!cuda) return dev;
    dev = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  } else if (spec == "cuda") {
    GRPO_REQUIRE(cuda, "model.device=cuda but no CUDA device is visible");
    dev = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  } else if (spec.rfind("cuda:", 0) == 0) {
    GRPO_REQUIRE(cuda, "model.device=", spec, " but no CUDA device is visible");
    GRPO_REQUIRE(env.local_world_size == 1, "model.device=", spec, " pins every process of this node to one GPU, but ",
                 env.local_world_size, " processes run on it; use device auto or cuda (LOCAL_RANK picks the GPU)");
    try {
      dev = torch::Device(spec);
    } catch (const std::exception&) {
      throw InputError(str("model.device='", spec, "' is not a device (expected auto, cpu, cuda or cuda:N)"));
    }
  } else {
    throw InputError(str("model.device='", spec, "' is not a device (expected auto, cpu, cuda or cuda:N)"));
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  GRPO_REQUIRE(dev.index() < count, "rank ", env.rank, " (LOCAL_RANK ", env.local_rank, ") needs ", dev.str(),
               " but only ", count, " CUDA device(s) are visible; start at most one process per GPU");
  return dev;
}

}  // namespace

std::string backend_name(config::DistBackend b) {
  switch (b) {
    case config::DistBackend::NCCL: return "nccl";
    case config::DistBackend::GLOO: return "gloo";
    default: return "none";
  }
}

bool nccl_available() {
#ifdef GRPO_DIST_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Distributed> Distributed::create(const config::DistributedConfig& cfg, const std::string& device_spec) {
  return create(cfg, device_spec, read_launch_env());
}

std::shared_ptr<Distributed> Distributed::create(const config::DistributedConfig& cfg, const std::string& device_spec,
                                                 const LaunchEnv& env, bool force_group) {
  std::shared_ptr<Distributed> d(new Distributed());
  d->env_ = env;
  d->timeout_s_ = cfg.timeout_s;
  d->device_ = resolve_device(device_spec, env);
  if (d->device_.is_cuda()) at::accelerator::setDeviceIndex(d->device_.index());

  auto backend = cfg.backend;
  if (backend == config::DistBackend::AUTO)
    backend = d->device_.is_cuda() ? config::DistBackend::NCCL : config::DistBackend::GLOO;
  GRPO_REQUIRE(!(backend == config::DistBackend::NCCL && !d->device_.is_cuda()),
               "distributed.backend=nccl needs CUDA devices, but this rank runs on ", d->device_.str(),
               "; use distributed.backend auto or gloo");
  GRPO_REQUIRE(!(backend == config::DistBackend::NCCL && !nccl_available()),
               "distributed.backend=nccl, but this build of grpo has no NCCL (LibTorch without USE_C10D_NCCL or "
               "nccl.h not found at build time); use gloo");
  if (env.world_size == 1 && !force_group) return d;  // one process: collectives are identities
  d->backend_ = backend;

  const auto timeout = to_ms(cfg.timeout_s);
  const std::string where = env.world_size == 1 ? std::string("in-process") : str(env.master_addr, ":", env.master_port);
  try {
    if (env.world_size == 1) {
      d->store_ = c10::make_intrusive<c10d::HashStore>();
      d->store_->setTimeout(timeout);
    } else {
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(env.master_port);
      o.isServer = env.rank == 0 && !env.agent_store;
      o.numWorkers = static_cast<size_t>(env.world_size);
      // No wait inside the constructor: its timeout error says only how many clients came.
      // exchange_host_labels() waits instead, with one key per rank, so that the error can
      // name the ranks that did not arrive. A client retries the connection for timeout_s.
      o.waitWorkers = false;
      o.timeout = timeout;
      auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
      // Keys of a restarted group (torchrun --max-restarts) must not meet the old ones.
      d->store_ = c10::make_intrusive<c10d::PrefixStore>(str("grpo/", env.restart_count, "/"), tcp);
    }
  } catch (const std::exception& e) {
    const bool server = env.rank == 0 && !env.agent_store;
    std::string cause = short_message(e);
    while (!cause.empty() && (cause.back() == '.' || cause.back() == ' ')) cause.pop_back();
    throw Error(str("rank ", env.rank, " of ", env.world_size, ": ",
                    server ? str("cannot serve the rendezvous store on port ", env.master_port, " (MASTER_PORT)")
                           : str("cannot reach the rendezvous store at ", where, " (MASTER_ADDR:MASTER_PORT)"),
                    " within distributed.timeout_s=", cfg.timeout_s, " s: ", cause,
                    server ? ". Is another run using this port? Pick another MASTER_PORT"
                           : ". Check MASTER_ADDR/MASTER_PORT, that rank 0's node is up and reachable from this one, "
                             "and that no firewall blocks the port"));
  }

  d->exchange_host_labels(where);

  try {
    d->pg_ = c10::make_intrusive<c10d::ProcessGroup>(d->store_, env.rank, env.world_size);
    if (backend == config::DistBackend::GLOO) {
      d->backend_impl_ =
          detail::make_gloo_backend(c10::make_intrusive<c10d::PrefixStore>("gloo/", d->store_), env, timeout);
      d->pg_->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, d->backend_impl_);
      d->pg_->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    } else {
#ifdef GRPO_DIST_HAVE_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      d->backend_impl_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl/", d->store_), env.rank, env.world_size, opts);
      d->pg_->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, d->backend_impl_);
      d->pg_->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(str("rank ", env.rank, " of ", env.world_size, ": creating the ", backend_name(backend),
                    " process group (store ", where, ") failed within ", cfg.timeout_s, " s: ", short_message(e)));
  }
  log::info(str("distributed: rank ", env.rank, "/", env.world_size, " (local ", env.local_rank, "/",
                env.local_world_size, ", from ", env.source, "), ", backend_name(backend), " on ", d->device_.str(),
                ", store ", where, ", timeout ", cfg.timeout_s, " s"));
  return d;
}

void Distributed::exchange_host_labels(const std::string& where) {
  // The rendezvous proper: every rank publishes its host under host/<rank> and waits for all
  // the others' keys for timeout_s. The keys also tell, when some never come, which ranks
  // arrived (and from where) and which did not; a failed collective later names every rank's
  // host (a Gloo timeout names no peer).
  hosts_.assign(static_cast<size_t>(env_.world_size), "?");
  const std::string mine = host_label();
  auto key = [](int r) { return str("host/", r); };
  std::vector<std::string> keys;
  for (int r = 0; r < env_.world_size; ++r) keys.push_back(key(r));
  try {
    store_->set(key(env_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    store_->wait(keys, to_ms(timeout_s_));
    for (int r = 0; r < env_.world_size; ++r) {
      auto bytes = store_->get(key(r));
      hosts_[r].assign(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    throw Error(missing_ranks_message(where, keys, short_message(e)));
  }
}

std::string Distributed::missing_ranks_message(const std::string& where, const std::vector<std::string>& keys,
                                               const std::string& cause) {
  std::string arrived, missing;
  int n_arrived = 0, n_missing = 0, listed = 0;
  bool store_alive = true;
  for (int r = 0; r < env_.world_size && store_alive; ++r) {
    bool here = false;
    try {
      here = store_->check({keys[r]});
      if (here && listed < 16) {
        auto bytes = store_->get(keys[r]);
        arrived += str(n_arrived ? ", " : "", "rank ", r, " on ", std::string(bytes.begin(), bytes.end()));
        ++listed;
      }
    } catch (const std::exception&) {
      store_alive = false;  // rank 0's store went away: nothing more to learn from it
      break;
    }
    if (here) {
      ++n_arrived;
    } else {
      // Nodes are numbered as torchrun does when every node runs LOCAL_WORLD_SIZE ranks.
      if (n_missing < 16)
        missing += str(n_missing ? ", " : "", "rank ", r, " (node ", r / std::max(1, env_.local_world_size), ")");
      ++n_missing;
    }
  }
  if (n_arrived > listed) arrived += str(" and ", n_arrived - listed, " more");
  if (n_missing > 16) missing += str(" and ", n_missing - 16, " more");
  std::string who = store_alive ? str(n_arrived, " of ", env_.world_size, " ranks arrived (", arrived, "); missing: ",
                                      missing, ". Check that every node was started, with WORLD_SIZE=",
                                      env_.world_size, " and the same MASTER_ADDR/MASTER_PORT")
                                : "the store stopped answering (rank 0 exited?)";
  return str("rank ", env_.rank, " of ", env_.world_size, " (", host_label(), "): rendezvous at ", where,
             " (MASTER_ADDR:MASTER_PORT) failed within distributed.timeout_s=", timeout_s_, " s: ", who, ". Cause: ", cause);
}

std::string Distributed::ranks_and_hosts() const {
  if (hosts_.empty()) return "";
  if (hosts_.size() > 8) return str("this rank on ", hosts_[env_.rank]);
  std::string out;
  for (size_t r = 0; r < hosts_.size(); ++r) out += str(r ? ", " : "", "rank ", r, " on ", hosts_[r]);
  return out;
}

Distributed::~Distributed() {
  if (!backend_impl_) return;
  try {
    // NCCL wants an explicit shutdown (it warns and may leak communicators otherwise).
    if (backend_ == config::DistBackend::NCCL) backend_impl_->shutdown();
  } catch (const std::exception& e) {
    log::warn(str("distributed: shutdown: ", short_message(e)));
  }
}

void Distributed::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  try {
    if (backend_ == config::DistBackend::GLOO) {
      // A bounded wait: Gloo's own timeout covers transfers, this covers everything else.
      work->wait(to_ms(timeout_s_));
    } else {
      // NCCL: wait() only orders the current stream after the collective; the watchdog enforces
      // the timeout (ProcessGroupNCCL::Options::timeout) and tears the process down.
      work->wait();
    }
  } catch (const std::exception& e) {
    throw Error(str("distributed ", what, " failed on rank ", env_.rank, " of ", env_.world_size, " (",
                    backend_name(backend_), ", distributed.timeout_s=", timeout_s_,
                    "): a peer rank died, hung or timed out (", ranks_and_hosts(),
                    "); see the other ranks' logs. Cause: ", short_message(e)));
  }
}

torch::Tensor Distributed::staged(const torch::Tensor& t) const {
  if (backend_ == config::DistBackend::NCCL) return t.to(device_).contiguous();
  return t.cpu().contiguous();
}

void Distributed::all_reduce(torch::Tensor& t, ReduceOp op) {
  if (!has_group()) return;  // one rank: sum, mean, min and max of one value are the value
  torch::NoGradGuard no_grad;
  torch::Tensor buf = staged(t);
  std::vector<at::Tensor> v{buf};
  c10d::AllreduceOptions o;
  o.reduceOp = to_c10d(op);
  o.timeout = to_ms(timeout_s_);
  wait(backend_impl_->allreduce(v, o), "all_reduce");
  if (op == ReduceOp::MEAN) {
    GRPO_CHECK(buf.is_floating_point(), "all_reduce MEAN of an integer tensor");
    buf.div_(world_size());
  }
  if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
}

double Distributed::all_reduce(double v, ReduceOp op) {
  if (!has_group()) return v;
  auto t = torch::tensor({v}, torch::kFloat64);
  all_reduce(t, op);
  return t.item<double>();
}

std::map<std::string, double> Distributed::all_reduce(const std::map<std::string, double>& metrics, ReduceOp op) {
  if (!has_group()) return metrics;
  std::string keys;
  for (const auto& [k, v] : metrics) keys += k + '\n';
  // Same key set everywhere <=> min(h) == h and min(-h) == -h on every rank.
  const auto h = static_cast<int64_t>(std::stoull(fnv1a64_hex(keys), nullptr, 16) >> 1);
  auto check = torch::tensor({h, -h}, torch::kInt64);
  all_reduce(check, ReduceOp::MIN);
  if (check[0].item<int64_t>() != h || check[1].item<int64_t>() != -h) {
    std::string list;
    for (const auto& [k, v] : metrics) list += (list.empty() ? "" : ", ") + k;
    throw Error(str("distributed all_reduce of metrics: rank ", env_.rank,
                    " has a different set of metric names than another rank; this rank has: ", list));
  }
  std::vector<double> vals;
  for (const auto& [k, v] : metrics) vals.push_back(v);
  auto t = torch::tensor(vals, torch::kFloat64);
  all_reduce(t, op);
  std::map<std::string, double> out;
  int64_t i = 0;
  for (const auto& [k, v] : metrics) out[k] = t[i++].item<double>();
  return out;
}

double Distributed::global_normalizer(double local_count) {
  return all_reduce(local_count, ReduceOp::SUM) / world_size();
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors, int root, int64_t bucket_bytes) {
  if (!has_group()) return;
  GRPO_CHECK(root >= 0 && root < world_size(), "broadcast root ", root);
  torch::NoGradGuard no_grad;
  size_t i = 0;
  while (i < tensors.size()) {
    // A bucket: consecutive tensors of one dtype and device, up to bucket_bytes.
    size_t j = i;
    int64_t bytes = 0;
    while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
           tensors[j].device() == tensors[i].device() &&
           (j == i || bytes + tensors[j].nbytes() <= static_cast<size_t>(bucket_bytes))) {
      bytes += tensors[j].nbytes();
      ++j;
    }
    std::vector<torch::Tensor> flat_parts;
    for (size_t k = i; k < j; ++k) flat_parts.push_back(staged(tensors[k]).reshape(-1));
    torch::Tensor flat = torch::cat(flat_parts);
    std::vector<at::Tensor> v{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = to_ms(timeout_s_);
    wait(backend_impl_->broadcast(v, o), "broadcast");
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      auto n = tensors[k].numel();
      auto t = tensors[k];
      t.copy_(flat.narrow(0, off, n).view(tensors[k].sizes()));
      off += n;
    }
    i = j;
  }
}

void Distributed::barrier() {
  if (!has_group()) return;
  c10d::BarrierOptions o;
  o.timeout = to_ms(timeout_s_);
  if (device_.is_cuda()) o.device_ids = {device_.index()};
  wait(backend_impl_->barrier(o), "barrier");
}

std::vector<std::string> Distributed::all_gather_string(const std::string& s) {
  if (!has_group()) return {s};
  const int64_t round = gather_round_++;
  auto key = [&](int r) { return str("gather/", round, "/", r); };
  std::vector<std::string> out(world_size());
  try {
    store_->set(key(rank()), std::vector<uint8_t>(s.begin(), s.end()));
    for (int r = 0; r < world_size(); ++r) {
      auto bytes = store_->get(key(r));  // waits up to the store timeout
      out[r].assign(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    throw Error(str("distributed all_gather (through the TCPStore) failed on rank ", rank(), " of ", world_size(),
                    " within ", timeout_s_, " s: a peer rank died, hung or never started",
                    hosts_.empty() ? std::string() : str(" (", ranks_and_hosts(), ")"), ". Cause: ", short_message(e)));
  }
  return out;
}

void Distributed::check_same_fingerprint(const std::string& fingerprint) {
  auto all = all_gather_string(fingerprint);
  // Everyone has read every key before anyone leaves (rank 0 serves the store).
  barrier();
  check_fingerprints(all);
}

}  // namespace grpo::dist
