// The `http` reward (http_reward.h) and its minimal HTTP/1.1 client: one connection per request
// ("Connection: close"), non-blocking connect/send/receive under one deadline, Content-Length,
// chunked or read-to-EOF bodies. No libcurl: the machines ship no libcurl headers (docs/rewards.md).
#include "grpo/reward/http_reward.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "grpo/reward/python_reward.h"
#include "grpo/util/error.h"
#include "grpo/util/log.h"

namespace grpo::reward {
namespace {

constexpr size_t kMaxResponse = 64u << 20;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Waits until `fd` is ready for `events` or the deadline passes; false on timeout.
bool wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // the next call reports the error
  }
}

// Connects to url within the deadline; returns the socket or -1 with `err` set.
int connect_to(const HttpUrl& url, int64_t deadline_ms, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(url.host.c_str(), std::to_string(url.port).c_str(), &hints, &res);
  if (gai != 0) {
    err = str("cannot resolve ", url.host, ": ", gai_strerror(gai));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      err = str("connect to ", url.host, ":", url.port, " failed: ", std::strerror(errno));
      close(fd);
      fd = -1;
      continue;
    }
    if (!wait_fd(fd, POLLOUT, deadline_ms)) {
      err = str("connect to ", url.host, ":", url.port, " timed out");
      close(fd);
      fd = -1;
      break;
    }
    int so = 0;
    socklen_t len = sizeof so;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
    if (so != 0) {
      err = str("connect to ", url.host, ":", url.port, " failed: ", std::strerror(so));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

// Decodes a chunked body; false when malformed or incomplete.
bool dechunk(const std::string& in, std::string& out) {
  size_t at = 0;
  for (;;) {
    size_t eol = in.find("\r\n", at);
    if (eol == std::string::npos) return false;
    size_t n = 0;
    try {
      n = std::stoul(in.substr(at, eol - at), nullptr, 16);
    } catch (...) {
      return false;
    }
    at = eol + 2;
    if (n == 0) return true;
    if (at + n > in.size()) return false;
    out.append(in, at, n);
    at += n + 2;
  }
}

// Splits a raw response into status and body.
void parse_response(const std::string& raw, HttpResponse& r) {
  size_t head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/", 0) != 0 || head_end == std::string::npos) {
    r.error = str("the reply is not HTTP: ", raw.substr(0, 80));
    return;
  }
  const std::string head = lower(raw.substr(0, head_end));
  size_t sp = head.find(' ');
  r.status = sp == std::string::npos ? 0 : std::atoi(head.c_str() + sp + 1);
  std::string body = raw.substr(head_end + 4);
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    std::string plain;
    if (!dechunk(body, plain)) {
      r.error = "the chunked reply body is malformed or incomplete";
      return;
    }
    body = std::move(plain);
  } else if (size_t cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
    size_t n = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    if (body.size() < n) {
      r.error = str("the reply ended after ", body.size(), " of its ", n, " body bytes");
      return;
    }
    body.resize(n);
  }
  r.body = std::move(body);
  r.ok = r.status > 0;
  if (!r.ok) r.error = "the reply has no HTTP status";
}

}  // namespace

HttpUrl parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  GRPO_REQUIRE(url.rfind(scheme, 0) == 0, "reward http: url must start with http:// (https is not supported: run a "
                                          "local proxy such as stunnel in front of an https endpoint), got '", url, "'");
  std::string rest = url.substr(scheme.size());
  HttpUrl u;
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    std::string port = hostport.substr(colon + 1);
    GRPO_REQUIRE(!port.empty() && port.find_first_not_of("0123456789") == std::string::npos && port.size() <= 5,
                 "reward http: bad port in url '", url, "'");
    u.port = std::stoi(port);
    hostport = hostport.substr(0, colon);
  }
  GRPO_REQUIRE(!hostport.empty() && u.port > 0 && u.port < 65536, "reward http: bad host or port in url '", url, "'");
  u.host = hostport;
  return u;
}

HttpResponse http_post_json(const HttpUrl& url, const std::string& body, double timeout_s) {
  HttpResponse r;
  const int64_t deadline = now_ms() + static_cast<int64_t>(timeout_s * 1000);
  int fd = connect_to(url, deadline, r.error);
  if (fd < 0) return r;
  const std::string req = str("POST ", url.path, " HTTP/1.1\r\nHost: ", url.host, ":", url.port,
                              "\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ",
                              body.size(), "\r\nConnection: close\r\n\r\n") + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t w = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        r.error = str("sending the request timed out after ", timeout_s, " s");
        close(fd);
        return r;
      }
    } else {
      r.error = str("sending the request failed: ", std::strerror(errno));
      close(fd);
      return r;
    }
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > kMaxResponse) {
        r.error = str("the reply exceeded ", kMaxResponse >> 20, " MiB");
        close(fd);
        return r;
      }
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_fd(fd, POLLIN, deadline)) {
        r.error = str("no complete reply within ", timeout_s, " s (timeout_s)");
        close(fd);
        return r;
      }
    } else {
      r.error = str("reading the reply failed: ", std::strerror(errno));
      close(fd);
      return r;
    }
  }
  close(fd);
  parse_response(raw, r);
  return r;
}

HttpReward::HttpReward(config::HttpParams params) : p_(std::move(params)), url_(parse_http_url(p_.url)) {
  GRPO_REQUIRE(!p_.label.empty(), "reward http: label must not be empty");
}

std::string HttpReward::attempt(const std::string& body, size_t n, std::vector<nlohmann::json>& values,
                                bool& retry) const {
  HttpResponse r = http_post_json(url_, body, p_.timeout_s);
  retry = true;
  if (!r.ok) return r.error;
  auto excerpt = [&] { return r.body.substr(0, 200); };
  if (r.status != 200) {
    retry = r.status >= 500 || r.status == 429;
    return str("HTTP ", r.status, ": ", excerpt());
  }
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  const nlohmann::json* list = nullptr;
  if (j.is_array()) list = &j;
  else if (j.is_object() && j.contains("rewards")) list = &j["rewards"];
  else if (j.is_object() && j.contains("scores")) list = &j["scores"];
  if (!list || !list->is_array())
    return str("the reply is not a JSON list of rewards nor an object with \"rewards\": ", excerpt());
  if (list->size() != n) return str("the reply holds ", list->size(), " rewards for ", n, " rows");
  values.assign(list->begin(), list->end());
  return "";
}

RewardScores HttpReward::score_batch(const std::vector<RewardInput>& batch) const {
  RewardScores out(batch.size());
  if (batch.empty()) return out;
  nlohmann::json req = python_reward_request(batch);
  nlohmann::json query = nlohmann::json::array();
  for (const auto& r : batch) query.push_back(r.prompt + r.completion);
  req["query"] = std::move(query);
  req.erase("trainer_state");
  const std::string body = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::vector<nlohmann::json> values;
  std::string err;
  int attempts = 0;
  double delay = p_.retry_delay_s;
  for (bool retry = true; retry && attempts <= p_.retries;) {
    if (attempts++ > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      delay *= 2;
    }
    err = attempt(body, batch.size(), values, retry);
    if (err.empty()) break;
  }
  if (!err.empty()) {
    const std::string msg = str("http reward ", p_.url, ": ", err, " (", attempts, " attempt(s))");
    log::warn(msg);
    for (size_t i = 0; i < batch.size(); ++i) {
      out.masked[i] = 1;
      out.problems[i] = msg + "; row masked";
    }
    out.counters["batch_errors"] += 1;
    return out;
  }
  if (attempts > 1) out.counters["retries"] += attempts - 1;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& v = values[i];
    if (v.is_number() && std::isfinite(v.get<double>()) && std::isfinite(v.get<float>())) {
      out.values[i] = v.get<float>();
      continue;
    }
    out.masked[i] = 1;
    out.problems[i] = str("http reward ", p_.label, ": ", v.is_null() ? std::string("null") : v.dump().substr(0, 60),
                          " for this row (masked)");
  }
  return out;
}

}  // namespace grpo::reward
