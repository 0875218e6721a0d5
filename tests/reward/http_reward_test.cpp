// The `http` reward against a local server (python_rewards/reward_server.py on 127.0.0.1): rewards,
// nulls, retries, and a clear error with masked rows for a timeout, garbage, a wrong count, a 404
// and a refused connection.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "grpo/reward/http_reward.h"
#include "grpo/util/error.h"

namespace {

using grpo::reward::HttpReward;
using grpo::reward::RewardInput;

class HttpRewardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string cmd = std::string("exec python3 ") + GRPO_SOURCE_DIR + "/tests/reward/python_rewards/reward_server.py";
    pipe_ = popen(cmd.c_str(), "r");
    ASSERT_NE(pipe_, nullptr);
    ASSERT_EQ(fscanf(pipe_, "%d %d", &port_, &pid_), 2);
  }
  static void TearDownTestSuite() {
    if (pid_ > 0) kill(pid_, SIGKILL);
    if (pipe_) pclose(pipe_);
  }
  static std::unique_ptr<HttpReward> reward(const std::string& path, double timeout_s = 5, int retries = 0) {
    grpo::config::HttpParams p;
    p.url = "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
    p.timeout_s = timeout_s;
    p.retries = retries;
    p.retry_delay_s = 0.05;
    return std::make_unique<HttpReward>(p);
  }
  static std::vector<RewardInput> rows() {
    return {{"Q: ", "abc", {{"answer", 1}}, 0}, {"Q: ", "skip", {}, 0}, {"Q: ", "hello", {}, 0}};
  }
  static void expect_failed(const grpo::reward::RewardScores& s, const std::string& what) {
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s.masked[i], 1);
      EXPECT_NE(s.problems[i].find("http reward http://127.0.0.1"), std::string::npos) << s.problems[i];
      EXPECT_NE(s.problems[i].find(what), std::string::npos) << s.problems[i];
    }
  }
  static inline FILE* pipe_ = nullptr;
  static inline int port_ = 0, pid_ = -1;
};

TEST_F(HttpRewardTest, ScoresABatchAndNullMasksItsRow) {
  for (const char* path : {"ok", "list"}) {  // an object with "rewards", and a bare list sent chunked
    auto s = reward(path)->score_batch(rows());
    EXPECT_EQ(s.values, (std::vector<float>{3.0f, 0.0f, 5.0f})) << path;
    EXPECT_EQ(s.masked, (std::vector<uint8_t>{0, 1, 0})) << path;
    EXPECT_TRUE(s.problems[0].empty());
  }
}

TEST_F(HttpRewardTest, RetriesA503) {
  auto s = reward("flaky", 5, 2)->score_batch(rows());
  EXPECT_EQ(s.values, (std::vector<float>{3.0f, 0.0f, 5.0f}));
  EXPECT_EQ(s.counters.at("retries"), 1.0);
}

TEST_F(HttpRewardTest, TimeoutGarbageCountAnd404AreClearErrors) {
  auto t0 = std::chrono::steady_clock::now();
  expect_failed(reward("slow", 0.5, 1)->score_batch(rows()), "no complete reply within 0.5 s");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  expect_failed(reward("garbage")->score_batch(rows()), "<html>surprise</html>");
  expect_failed(reward("count")->score_batch(rows()), "4 rewards for 3 rows");
  expect_failed(reward("missing", 5, 3)->score_batch(rows()), "HTTP 404");
  expect_failed(reward("missing", 5, 3)->score_batch(rows()), "(1 attempt(s))");  // 4xx is not retried
}

TEST_F(HttpRewardTest, RefusedConnectionIsRetriedThenMasked) {
  grpo::config::HttpParams p;
  p.url = "http://127.0.0.1:1/score";  // nothing listens on port 1
  p.retries = 1;
  p.retry_delay_s = 0.01;
  auto s = HttpReward(p).score_batch(rows());
  expect_failed(s, "Connection refused");
  EXPECT_NE(s.problems[0].find("(2 attempt(s))"), std::string::npos) << s.problems[0];
}

TEST(HttpUrl, ParsesHttpAndRefusesHttps) {
  auto u = grpo::reward::parse_http_url("http://rm.local:8000/get_reward");
  EXPECT_EQ(u.host, "rm.local");
  EXPECT_EQ(u.port, 8000);
  EXPECT_EQ(u.path, "/get_reward");
  EXPECT_EQ(grpo::reward::parse_http_url("http://h").path, "/");
  EXPECT_EQ(grpo::reward::parse_http_url("http://h").port, 80);
  EXPECT_THROW(grpo::reward::parse_http_url("https://h/x"), grpo::InputError);
  EXPECT_THROW(grpo::reward::parse_http_url("http://h:99999/"), grpo::InputError);
}

}  // namespace
