// The pipe pump (sandbox_run.h): one poll() loop over init's status pipe and every stage's stdin,
// stdout and stderr, until init and all output pipes are closed. It also enforces what only the
// host can: a backstop on the wall clock should init itself hang, and the stop of a program that
// keeps flooding its output.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "grpo/util/error.h"
#include "sandbox_run.h"

namespace grpo::reward::sandbox_detail {
namespace {

constexpr int64_t kFloodBytes = 64LL << 20;  // drained past the cap before a run is stopped
constexpr int64_t kSetupGraceNs = 20'000'000'000LL;  // init's own setup: generous, never the program's fault
constexpr int64_t kBetweenStagesNs = 20'000'000'000LL;  // from one stage's end to the next one's start
constexpr int64_t kStageBackstopNs = 3'000'000'000LL;  // past a stage's own wall limit (init enforces that)
constexpr int64_t kEofGraceNs = 200'000'000LL;  // init gone: how long a daemon may hold an output pipe

/// Which pipe a polled descriptor is.
enum class Channel {
  STATUS,  // init -> host: Records
  STDOUT,  // a stage's stdout
  STDERR,  // a stage's stderr
  STDIN,   // host -> a stage's stdin
};

class PipePump {
 public:
  PipePump(RunReport& report, const std::vector<StageSpec>& specs, RunPipes& pipes, InitProcess& init,
           int max_output_bytes, int64_t host_deadline_ns)
      : report_(report),
        specs_(specs),
        pipes_(pipes),
        init_(init),
        cap_(static_cast<size_t>(std::max(0, max_output_bytes))),
        in_pos_(specs.size(), 0),
        host_deadline_(host_deadline_ns > 0 ? host_deadline_ns : INT64_MAX),
        buf_(1 << 20) {}

  void run();

 private:
  struct Watch {
    Channel channel;
    size_t stage;  // unused for STATUS
  };

  void watch_open_pipes(std::vector<pollfd>& pfds, std::vector<Watch>& watched);
  void stop_at_deadline(int64_t now);
  void serve(const Watch& w);
  void write_stdin(size_t stage);
  Fd& read_end(const Watch& w);
  void on_status_bytes(const char* data, size_t n);
  void on_record(const Record& r);
  void on_output(Channel channel, size_t stage, const char* data, size_t n);
  void stop_run();

  RunReport& report_;
  const std::vector<StageSpec>& specs_;
  RunPipes& pipes_;
  InitProcess& init_;
  const size_t cap_;             // per stage and stream
  std::vector<size_t> in_pos_;   // [stage] bytes of stdin written so far
  int64_t deadline_ = 0;        // the host stops the run here (see run())
  int64_t host_deadline_;        // a wall-clock limit the host enforces itself (pump_pipes)
  int current_ = -1;             // the stage that started last, -1 before the first
  bool status_open_ = true;
  int64_t eof_grace_deadline_ = 0;
  std::string status_buf_;       // status bytes not yet a whole Record
  std::vector<char> buf_;        // one read
};

void PipePump::run() {
  for (auto& s : pipes_.stages)
    if (s.in_w.fd >= 0) fcntl(s.in_w.fd, F_SETFL, O_NONBLOCK);
  deadline_ = now_ns() + kSetupGraceNs;
  for (;;) {
    std::vector<pollfd> pfds;
    std::vector<Watch> watched;
    watch_open_pipes(pfds, watched);
    const bool outputs_open = std::any_of(watched.begin(), watched.end(), [](const Watch& w) {
      return w.channel == Channel::STDOUT || w.channel == Channel::STDERR;
    });
    if (!status_open_ && !outputs_open) break;
    const int64_t now = now_ns();
    int64_t limit = std::min(deadline_, host_deadline_);
    if (!status_open_) {
      // init is gone; with a PID namespace every writer died with it. Without one a daemon may hold
      // a pipe: give it a moment, then stop listening.
      if (eof_grace_deadline_ == 0) eof_grace_deadline_ = now + kEofGraceNs;
      limit = std::min(limit, eof_grace_deadline_);
    }
    if (now >= limit) {
      if (!status_open_ && now >= eof_grace_deadline_) break;
      stop_at_deadline(now);
      continue;
    }
    int timeout_ms = static_cast<int>(std::min<int64_t>((limit - now) / 1'000'000 + 1, 1000));
    int rc = poll(pfds.data(), pfds.size(), timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      report_.error = str("poll failed: ", std::strerror(errno));
      init_.kill_and_reap();
      break;
    }
    for (size_t k = 0; k < pfds.size(); ++k)
      if (pfds[k].revents != 0) serve(watched[k]);
  }
}

// The descriptors still open, in a fixed order: status, then per stage stdout, stderr, stdin.
void PipePump::watch_open_pipes(std::vector<pollfd>& pfds, std::vector<Watch>& watched) {
  if (status_open_) {
    pfds.push_back({pipes_.status_r.fd, POLLIN, 0});
    watched.push_back({Channel::STATUS, 0});
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    RunPipes::Stage& s = pipes_.stages[i];
    if (s.out_r.fd >= 0) {
      pfds.push_back({s.out_r.fd, POLLIN, 0});
      watched.push_back({Channel::STDOUT, i});
    }
    if (s.err_r.fd >= 0) {
      pfds.push_back({s.err_r.fd, POLLIN, 0});
      watched.push_back({Channel::STDERR, i});
    }
    if (s.in_w.fd >= 0) {
      if (in_pos_[i] >= specs_[i].stdin_data->size()) {
        s.in_w.reset();  // everything written: EOF for the program
      } else {
        pfds.push_back({s.in_w.fd, POLLOUT, 0});
        watched.push_back({Channel::STDIN, i});
      }
    }
  }
}

// Wall-clock limit of the current stage (or of the setup): kill the whole run.
void PipePump::stop_at_deadline(int64_t now) {
  if (current_ < 0 && now >= host_deadline_ && !report_.stages.empty()) {
    // The host's own limit ran out before init reported the start (a pre-started run still
    // setting up): the program's time is up all the same.
    report_.stages[0].timed_out = true;
    report_.stages[0].start_ns = now;
  } else if (current_ >= 0) {
    StageReport& so = report_.stages[static_cast<size_t>(current_)];
    if (!so.ended) {
      so.timed_out = true;
      so.wall_s = double(now - so.start_ns) * 1e-9;
    }
  } else if (report_.error.empty()) {
    report_.error = "sandbox setup did not finish within 20 s";
  }
  stop_run();
}

void PipePump::stop_run() {
  init_.kill_and_reap();
  deadline_ = INT64_MAX;
  host_deadline_ = INT64_MAX;
}

Fd& PipePump::read_end(const Watch& w) {
  switch (w.channel) {
    case Channel::STATUS: return pipes_.status_r;
    case Channel::STDOUT: return pipes_.stages[w.stage].out_r;
    case Channel::STDERR: return pipes_.stages[w.stage].err_r;
    case Channel::STDIN: break;
  }
  throw InternalError("sandbox: stdin has no read end on the host");
}

// One ready descriptor: write to a stdin, or read from the others (EOF closes ours).
void PipePump::serve(const Watch& w) {
  if (w.channel == Channel::STDIN) {
    write_stdin(w.stage);
    return;
  }
  Fd& fd = read_end(w);
  ssize_t n = read(fd.fd, buf_.data(), buf_.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    if (w.channel == Channel::STATUS) status_open_ = false;
    fd.reset();
    return;
  }
  if (w.channel == Channel::STATUS)
    on_status_bytes(buf_.data(), static_cast<size_t>(n));
  else
    on_output(w.channel, w.stage, buf_.data(), static_cast<size_t>(n));
}

void PipePump::write_stdin(size_t stage) {
  const std::string& data = *specs_[stage].stdin_data;
  size_t& pos = in_pos_[stage];
  Fd& fd = pipes_.stages[stage].in_w;
  ssize_t w = write(fd.fd, data.data() + pos, std::min<size_t>(data.size() - pos, 1 << 16));
  if (w > 0)
    pos += static_cast<size_t>(w);
  else if (w < 0 && errno != EAGAIN && errno != EINTR)
    fd.reset();  // reader gone
}

void PipePump::on_status_bytes(const char* data, size_t n) {
  status_buf_.append(data, n);
  while (status_buf_.size() >= sizeof(Record)) {
    Record r;
    std::memcpy(&r, status_buf_.data(), sizeof r);
    status_buf_.erase(0, sizeof r);
    on_record(r);
  }
}

void PipePump::on_record(const Record& r) {
  if (r.kind == REC_SETUP_ERROR) {
    report_.setup_step = r.step;
    report_.setup_errno = r.err;
    report_.error = str("sandbox setup failed at ", step_name(r.step), ": ", std::strerror(r.err));
    return;
  }
  if (r.stage < 0 || static_cast<size_t>(r.stage) >= report_.stages.size()) return;
  StageReport& so = report_.stages[static_cast<size_t>(r.stage)];
  if (r.kind == REC_START) {
    so.started = true;
    so.start_ns = now_ns();
    current_ = r.stage;
    // init enforces the limit; this is the backstop should init itself hang.
    deadline_ = so.start_ns + static_cast<int64_t>(std::min(specs_[static_cast<size_t>(r.stage)].wall_s, 1e6) * 1e9) +
                kStageBackstopNs;
    return;
  }
  so.ended = true;
  so.wait_status = r.wait_status;
  so.cpu_s = double(r.cpu_us) * 1e-6;
  so.maxrss_kb = r.maxrss_kb;
  so.wall_s = double(r.wall_ns) * 1e-9;
  if (r.kind == REC_CHILD_ERROR) {
    so.child_error_step = r.step;
    so.child_error_errno = r.err;
  }
  so.timed_out = r.timed_out != 0;
  deadline_ = now_ns() + kBetweenStagesNs;  // until the next stage starts
}

void PipePump::on_output(Channel channel, size_t stage, const char* data, size_t n) {
  StageReport& so = report_.stages[stage];
  std::string& dst = channel == Channel::STDOUT ? so.out : so.err;
  bool& trunc = channel == Channel::STDOUT ? so.out_trunc : so.err_trunc;
  size_t room = cap_ > dst.size() ? cap_ - dst.size() : 0;
  size_t take = std::min(room, n);
  dst.append(data, take);
  if (take == n) return;
  trunc = true;  // the rest is dropped
  so.dropped += static_cast<int64_t>(n - take);
  if (so.dropped > kFloodBytes && !so.ended && !init_.reaped()) {
    // Draining forever only burns a worker: a program that keeps flooding is stopped.
    so.flooded = true;
    so.wall_s = double(now_ns() - so.start_ns) * 1e-9;
    stop_run();
  }
}

}  // namespace

void pump_pipes(RunReport& report, const std::vector<StageSpec>& specs, RunPipes& pipes, InitProcess& init,
                int max_output_bytes, int64_t host_deadline_ns) {
  PipePump(report, specs, pipes, init, max_output_bytes, host_deadline_ns).run();
}

}  // namespace grpo::reward::sandbox_detail
