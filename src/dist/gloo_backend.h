#pragma once
// Private to src/dist: the one place that constructs c10d::ProcessGroupGloo (its header needs the
// Gloo declarations of gloo_decl/, which no other translation unit should see).
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

#include "grpo/dist/launch_env.h"

namespace grpo::dist::detail {

/// A Gloo backend over `store` with every collective bounded by `timeout`. Network interfaces:
/// GLOO_SOCKET_IFNAME (comma-separated) when set, loopback when every rank is on this node,
/// else the address this host's name resolves to. Throws what c10d throws.
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, const LaunchEnv& env,
                                                    std::chrono::milliseconds timeout);

}  // namespace grpo::dist::detail
