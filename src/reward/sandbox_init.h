#pragma once
// Internal to the sandbox (not a public header): the run's Plan and the init process that carries
// it out. init_main() and everything it calls make only system calls (no allocation, no locks), so
// it can run in a clone() of the multi-threaded host; the same code is also the main of the small
// `grpo-sandbox-init` executable (src/sandbox_init_main.cpp), which the host execs as the run's
// init so that the program's processes descend from a small address space instead of the
// trainer's (fork cost, and ru_maxrss: an exec reports the old address space's peak as the new
// program's, see sandbox.cpp).
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grpo::reward::sandbox_detail {

constexpr uid_t kSandboxUid = 65534;  // "nobody" inside and outside the user namespace
constexpr gid_t kSandboxGid = 65534;
constexpr const char* kNewRoot = "/tmp";  // staging mount point of the new root inside the mount ns

// Setup steps, reported by number when one fails (so the host can fall back or explain).
enum Step : int32_t {
  STEP_FDS = 1, STEP_SYNC, STEP_HOSTNAME, STEP_MOUNT_PRIVATE, STEP_ROOT_TMPFS, STEP_MKDIR, STEP_SYMLINK,
  STEP_BIND, STEP_BIND_RO, STEP_DEV, STEP_PROC, STEP_WORK_TMPFS, STEP_WRITE_FILE, STEP_PIVOT, STEP_ROOT_RO,
  STEP_EXEC_PIPE, STEP_FORK,
  // in the stage child
  STEP_CHILD_FDS, STEP_CHILD_RLIMIT, STEP_CHILD_IDS, STEP_CHILD_NNP, STEP_CHILD_SECCOMP, STEP_CHILD_EXEC,
};

// init -> host, one per event, written atomically (< PIPE_BUF).
struct Record {
  int32_t kind;  // 1 stage start, 2 stage end, 3 setup error, 4 stage child setup error
  int32_t stage;
  int32_t wait_status;
  int32_t err;   // errno
  int32_t step;
  int32_t timed_out;  // init killed the stage at its wall-clock limit
  int64_t cpu_us;
  int64_t maxrss_kb;
  int64_t wall_ns;
};
enum : int32_t { REC_START = 1, REC_END = 2, REC_SETUP_ERROR = 3, REC_CHILD_ERROR = 4 };

struct Limit {
  int resource;
  rlim_t soft, hard;
};

// What init needs of the isolation settings.
struct InitIsolation {
  bool pid_ns = true, proc = true, seccomp = true, uts_ns = true;
};

// Everything the cloned child needs, prepared on the host before clone().
struct StagePlan {
  std::string path;  // absolute executable inside the view
  std::vector<std::string> argv_s;
  std::vector<char*> argv;
  std::vector<Limit> limits;
  int stdin_fd = -1;  // child end, -1: /dev/null
  int stdout_fd = -1, stderr_fd = -1;
  bool stop_on_failure = false;  // compile stage
  int64_t wall_ns = 0;
};
struct BindPlan {
  std::string src, dst;
  bool read_only = true;
};
struct FilePlan {
  std::string path;
  const std::string* content;
  std::string owned;  // the content, when decoded in grpo-sandbox-init
};
struct Plan {
  InitIsolation iso;
  int sync_fd = -1, status_fd = -1;
  std::vector<std::string> mkdirs;                              // absolute, under kNewRoot
  std::vector<std::pair<std::string, std::string>> symlinks;   // target, linkpath
  std::vector<BindPlan> binds;
  std::vector<std::string> dev_nodes;   // "null" -> bind /dev/null onto <root>/dev/null
  std::string root_opts, dev_opts, shm_opts, work_opts;
  std::string proc_dir, dev_dir, shm_dir, work_dir;
  std::vector<FilePlan> files;
  std::vector<StagePlan> stages;
  std::vector<std::string> env_s;
  std::vector<char*> env;
  const std::vector<uint8_t>* bpf = nullptr;
  std::vector<uint8_t> bpf_owned;  // when decoded in grpo-sandbox-init
  std::vector<char> child_stack;  // the stage child's stack (it shares init's memory until exec)
  std::vector<char> init_stack;   // init's stack: init shares the host's memory (CLONE_VM)
};

int64_t now_ns();  // CLOCK_MONOTONIC

/// Plan <-> bytes, for handing a plan to the grpo-sandbox-init executable through a memfd.
/// Descriptor numbers are carried as they are (the exec keeps them). decode_plan returns false on
/// malformed input; the plan then owns its strings (FilePlan::content and bpf point into it).
std::string encode_plan(const Plan& p);
bool decode_plan(const std::string& bytes, Plan& p);

/// The run's init: with wait_for_go it first waits for the host's 'g' on sync_fd (the uid maps
/// are written). Never returns.
[[noreturn]] void init_main(const Plan& p, bool wait_for_go);

/// clone() entry: init_main(*static_cast<const Plan*>(arg), true).
int init_entry(void* arg);

}  // namespace grpo::reward::sandbox_detail
