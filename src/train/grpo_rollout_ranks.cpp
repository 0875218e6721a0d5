// distributed.rollout_ranks (issue 22), synchronous: the trainer draws its prompts as always and,
// for each draw, sends the rollout rank the loader position before the draw, the draw's round, the
// generation index and step (the sampling seeds and the reward's trainer_state), then its weights;
// the rollout rank draws the same prompts from the same position, samples them with the same seeds
// (roll_out), scores them (score) and sends completions and rewards back (rollout_messages.h). So a
// run with a rollout rank should sample what one process would (not yet checked against a 1-process run).
#include <nlohmann/json.hpp>

#include "grpo/dist/rollout_ranks.h"
#include "grpo/train/grpo_stage.h"
#include "grpo/train/rollout_messages.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::train {

namespace {
constexpr int kCommandTag = 2201;
constexpr int kReplyTag = 2202;

std::vector<torch::Tensor> weights_of(Policy& policy) {
  std::vector<torch::Tensor> params;
  for (auto& p : policy.model->parameters()) params.push_back(p);
  return params;
}
}  // namespace

void GrpoStage::set_rollout_rank(std::shared_ptr<dist::Distributed> world, int rollout_rank) {
  GRPO_REQUIRE(!dist_, "rollout ranks: the trainer's stage must be built without a data-parallel group");
  GRPO_REQUIRE(cfg_.grpo.async_rollout == config::AsyncRolloutMode::OFF,
               "distributed.rollout_ranks with grpo.async_rollout: on is not supported yet (the rollout rank generates "
               "synchronously); set one of them off");
  rollout_world_ = std::move(world);
  rollout_rank_ = rollout_rank;
}

void GrpoStage::remote_roll_out(Draw& d, int round, int64_t B, const RollCtx& ctx, const data::LoaderPosition& before) {
  const nlohmann::json cmd = {{"op", "roll"},  {"round", round},           {"B", B},
                              {"generation", ctx.generation}, {"step", ctx.step},
                              {"epoch", before.epoch},        {"index", before.index}};
  dist::send_bytes(*rollout_world_, cmd.dump(), rollout_rank_, kCommandTag);
  dist::broadcast_weights(*rollout_world_, weights_of(policy_), rollout_world_->rank());
  RolloutReply r = decode_rollout_reply(dist::recv_bytes(*rollout_world_, rollout_rank_, kReplyTag));
  GRPO_REQUIRE(r.scored.total.size() == r.completions.size(), "rollout rank ", rollout_rank_, ": ",
               r.completions.size(), " completions but ", r.scored.total.size(), " rewards");
  d.completions = std::move(r.completions);
  d.scored = std::move(r.scored);
}

void GrpoStage::stop_rollout_rank(bool interrupted) {
  if (!rollout_world_) return;
  const nlohmann::json cmd = {{"op", "stop"}, {"interrupted", interrupted}};
  dist::send_bytes(*rollout_world_, cmd.dump(), rollout_rank_, kCommandTag);
}

bool GrpoStage::serve_rollouts(std::shared_ptr<dist::Distributed> world, int trainer_rank) {
  GRPO_REQUIRE(!dist_, "rollout ranks: the rollout rank's stage must be built without a data-parallel group");
  int64_t served = 0;
  for (;;) {
    const auto cmd = nlohmann::json::parse(dist::recv_bytes(*world, trainer_rank, kCommandTag));
    if (cmd.at("op") == "stop") {
      log::info(str("rollout rank ", world->rank(), ": served ", served, " draws (", local_rollouts_,
                    " generate calls on this rank)"));
      return cmd.value("interrupted", false);
    }
    loader_->set_position({cmd.at("epoch").get<int64_t>(), cmd.at("index").get<int64_t>()});
    Draw d;
    draw_prompts(d, cmd.at("B").get<int64_t>());
    dist::broadcast_weights(*world, weights_of(policy_), trainer_rank);
    const RollCtx ctx{engine_.get(), cmd.at("generation").get<int64_t>(), cmd.at("step").get<int64_t>()};
    roll_out(d, cmd.at("round").get<int>(), cmd.at("B").get<int64_t>(), ctx);
    score(d, ctx);
    RolloutReply r{ctx.step, std::move(d.completions), std::move(d.scored)};
    dist::send_bytes(*world, encode_rollout_reply(r), trainer_rank, kReplyTag);
    ++served;
  }
}

}  // namespace grpo::train
