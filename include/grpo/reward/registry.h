#pragma once
// Factory registry: config::RewardKind -> a function that builds that kind from its config entry.
// The built-in kinds (format, math_answer, countdown, language_consistency, length) are registered
// by the registry itself.
//
// The `code` kind lives in src/reward/code_reward.cpp (the sandbox). Its plug-in point: when a
// header include/grpo/reward/code_reward.h exists, registry.cpp includes it and calls
//   void grpo::reward::register_code_reward();
// once, before the first lookup; that function calls register_reward_factory(RewardKind::CODE, ...).
// (A self-registering static object in a static library would be dropped by the linker, since
// nothing references its object file; the direct call keeps it linked.) Until then, building a
// config with `code` throws grpo::InputError.
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// Builds one reward function from its config entry; `all` is the whole reward section (for the
/// sandbox limits, or for functions that reuse another entry's parameters).
using RewardFactory = std::function<std::unique_ptr<RewardFunction>(const config::RewardFunctionConfig& entry,
                                                                    const config::RewardConfig& all)>;

/// Registers (or replaces) the factory of `kind`. Thread-safe.
void register_reward_factory(config::RewardKind kind, RewardFactory factory);

/// True when a factory for `kind` is registered.
bool has_reward_factory(config::RewardKind kind);

/// The dataset fields the configured functions read from each row (math_answer's reference_field,
/// countdown's numbers_field and target_field, code's tests_field, and those of the correctness kind
/// of a cosine length reward). The data loader requires data.answer_field only when it is one of them.
std::set<std::string> reference_fields(const config::RewardConfig& cfg);

/// Builds the function for `entry`. Throws grpo::InputError when no factory is registered for its
/// kind, or when its parameters are invalid (e.g. an answer_regex RE2 cannot compile).
std::unique_ptr<RewardFunction> make_reward_function(const config::RewardFunctionConfig& entry,
                                                     const config::RewardConfig& all);

}  // namespace grpo::reward
