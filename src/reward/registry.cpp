#include "grpo/reward/registry.h"

#include <map>
#include <mutex>

#include "grpo/reward/countdown_reward.h"
#include "grpo/reward/format_reward.h"
#include "grpo/reward/http_reward.h"
#include "grpo/reward/language_consistency_reward.h"
#include "grpo/reward/length_reward.h"
#include "grpo/reward/math_answer_reward.h"
#include "grpo/reward/python_reward.h"
#include "grpo/util/error.h"

// The sandbox's `code` reward plugs in here when its header exists (see registry.h).
#if __has_include("grpo/reward/code_reward.h")
#include "grpo/reward/code_reward.h"
#define GRPO_HAVE_CODE_REWARD 1
#endif

namespace grpo::reward {
namespace {

struct Registry {
  std::mutex mu;
  std::map<config::RewardKind, RewardFactory> factories;
};

std::unique_ptr<RewardFunction> make_length(const config::RewardFunctionConfig& e, const config::RewardConfig& all) {
  std::unique_ptr<RewardFunction> correctness;
  if (e.length.mode == config::LengthMode::COSINE) {
    const auto kind = e.length.correctness;
    GRPO_REQUIRE(kind == config::RewardKind::MATH_ANSWER || kind == config::RewardKind::COUNTDOWN,
                 "reward length: correctness must be math_answer or countdown, got ", config::enum_name(kind));
    config::RewardFunctionConfig inner;
    inner.name = kind;
    for (const auto& f : all.functions)  // the first entry of that kind lends its parameters
      if (f.name == kind) {
        inner = f;
        break;
      }
    correctness = make_reward_function(inner, all);
  }
  return std::make_unique<LengthReward>(e.length, std::move(correctness));
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: factories may be looked up during static teardown
    using config::RewardKind;
    reg->factories[RewardKind::FORMAT] = [](const auto& e, const auto&) { return std::make_unique<FormatReward>(e.format); };
    reg->factories[RewardKind::MATH_ANSWER] = [](const auto& e, const auto&) {
      return std::make_unique<MathAnswerReward>(e.math_answer);
    };
    reg->factories[RewardKind::COUNTDOWN] = [](const auto& e, const auto&) {
      return std::make_unique<CountdownReward>(e.countdown);
    };
    reg->factories[RewardKind::LANGUAGE_CONSISTENCY] = [](const auto& e, const auto&) {
      return std::make_unique<LanguageConsistencyReward>(e.language_consistency);
    };
    reg->factories[RewardKind::LENGTH] = make_length;
    reg->factories[RewardKind::PYTHON] = [](const auto& e, const auto& all) {
      return std::make_unique<PythonReward>(e.python, all.sandbox);
    };
    reg->factories[RewardKind::HTTP] = [](const auto& e, const auto&) { return std::make_unique<HttpReward>(e.http); };
    return reg;
  }();
  return *r;
}

void plug_in_optional_kinds() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef GRPO_HAVE_CODE_REWARD
    register_code_reward();
#endif
  });
}

}  // namespace

void register_reward_factory(config::RewardKind kind, RewardFactory factory) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[kind] = std::move(factory);
}

bool has_reward_factory(config::RewardKind kind) {
  plug_in_optional_kinds();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.factories.count(kind) > 0;
}

std::set<std::string> reference_fields(const config::RewardConfig& cfg) {
  using config::RewardKind;
  std::set<std::string> out;
  auto add = [&](const config::RewardFunctionConfig& f) {
    switch (f.name) {
      case RewardKind::MATH_ANSWER: out.insert(f.math_answer.reference_field); break;
      case RewardKind::COUNTDOWN: out.insert({f.countdown.numbers_field, f.countdown.target_field}); break;
      case RewardKind::CODE: out.insert(f.code.tests_field); break;
      case RewardKind::FORMAT:
      case RewardKind::LANGUAGE_CONSISTENCY:
      case RewardKind::LENGTH:
      case RewardKind::PYTHON:  // reads every column; requires none
      case RewardKind::HTTP: break;
    }
  };
  for (const auto& f : cfg.functions) {
    add(f);
    if (f.name != RewardKind::LENGTH || f.length.mode != config::LengthMode::COSINE) continue;
    // The cosine length reward judges correctness with the first entry of its kind (make_length).
    config::RewardFunctionConfig inner;
    inner.name = f.length.correctness;
    for (const auto& g : cfg.functions)
      if (g.name == inner.name) {
        inner = g;
        break;
      }
    add(inner);
  }
  return out;
}

std::unique_ptr<RewardFunction> make_reward_function(const config::RewardFunctionConfig& entry,
                                                     const config::RewardConfig& all) {
  plug_in_optional_kinds();
  RewardFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(entry.name);
    if (it != r.factories.end()) factory = it->second;
  }
  GRPO_REQUIRE(factory, "reward function '", config::enum_name(entry.name),
               "' is not available in this build (no factory registered for it)",
               entry.name == config::RewardKind::CODE ? "; the code sandbox reward has not been plugged in yet" : "");
  auto fn = factory(entry, all);
  GRPO_CHECK(fn != nullptr, "factory of ", config::enum_name(entry.name), " returned null");
  return fn;
}

}  // namespace grpo::reward
