// kernels.logprob_chunk_size reaches the token_logprobs op: the chunk_size argument of every
// grpo::token_logprobs dispatcher call is read back by a RecordFunction callback (not a value the
// code reports itself), and the logprobs do not depend on it beyond float32 summation order.
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <vector>

#include "grpo/model/transformer.h"
#include "grpo/train/token_batch.h"

namespace grpo::train {
namespace {

std::vector<int64_t>& seen_chunks() {
  thread_local std::vector<int64_t> v;
  return v;
}

TEST(LogprobChunkSize, PassedToEveryTokenLogprobsCall) {
  config::ModelConfig c;
  c.vocab_size = 37;  // not a multiple of the chunk sizes below
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  torch::manual_seed(5);
  model::Transformer m(model::spec_from_config(c));
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 9, 2}, {3, 4}}, comps = {{7, 8, 9, 10, 11}, {12, 13, 14}};
  std::vector<const std::vector<int64_t>*> ps = {&prompts[0], &prompts[1]}, cs = {&comps[0], &comps[1]};
  auto tb = make_token_batch(ps, cs, 0, m->device());

  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()) == "grpo::token_logprobs") seen_chunks().push_back(fn.inputs().back().toInt());
        return nullptr;
      })
          .needsInputs(true)
          .scopes({at::RecordScope::FUNCTION}));
  seen_chunks().clear();
  auto def = completion_logprobs(m, tb, 1.0, false);
  auto small = completion_logprobs(m, tb, 1.0, false, 5);
  at::removeCallback(handle);

  EXPECT_EQ(seen_chunks(), (std::vector<int64_t>{4096, 5}));
  // float32 online log-sum-exp over 8 chunks vs 1: a few ulps of values of order log(37) ~ 3.6.
  EXPECT_LE((def.logprobs - small.logprobs).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace grpo::train
