#pragma once
// `http`: a reward computed by a server elsewhere (a reward model behind vLLM/TGI, a verifier
// service). Each batch is POSTed as one JSON object and the reply holds one reward per row; the
// protocol follows OpenRLHF's remote_rm_url (docs/rewards.md, "A remote reward server"):
//   request  {"query": [prompt + completion, ...], "prompts": [...], "completions": [...],
//             "completion_ids": [...] | null, "columns": {name: [per row]}}
//   reply    {"rewards": [float | null, ...]}  (or "scores", or a bare JSON list)
// A null masks its row. A failed attempt (connection refused, timeout, HTTP 5xx or 429, an
// unreadable reply or the wrong count) is retried `retries` times; when every attempt fails the
// batch's rows are masked with one error naming the URL and what went wrong. HTTP 4xx is not
// retried. Plain http:// only (a minimal HTTP/1.1 client over POSIX sockets; no TLS).
#include <cstdint>
#include <string>
#include <vector>

#include "grpo/config/reward_config.h"
#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// The parts of an http:// URL.
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string path = "/";
};

/// Parses "http://host[:port][/path]". Throws grpo::InputError for anything else (https included).
HttpUrl parse_http_url(const std::string& url);

/// One HTTP exchange's outcome.
struct HttpResponse {
  bool ok = false;        // a complete HTTP response was read (any status)
  int status = 0;
  std::string body;
  std::string error;      // when !ok: what failed (connect, timeout, malformed reply)
};

/// POSTs `body` as application/json to `url` and reads the whole reply, within `timeout_s`
/// overall. Never throws for network failures. Reads at most 64 MiB.
HttpResponse http_post_json(const HttpUrl& url, const std::string& body, double timeout_s);

class HttpReward : public RewardFunction {
 public:
  explicit HttpReward(config::HttpParams params);
  std::string name() const override { return p_.label; }
  RewardScores score_batch(const std::vector<RewardInput>& batch) const override;

 private:
  // One attempt: "" and `values` filled on success, else what went wrong; `retry` says whether
  // another attempt could help.
  std::string attempt(const std::string& body, size_t n, std::vector<nlohmann::json>& values, bool& retry) const;

  config::HttpParams p_;
  HttpUrl url_;
};

}  // namespace grpo::reward
