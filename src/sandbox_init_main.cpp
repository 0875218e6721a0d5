// grpo-sandbox-init: the init process of one sandbox run. The host (src/reward/sandbox.cpp)
// clone()s into the run's namespaces, waits for the uid maps, and execs this small executable with
// the run's Plan in a memfd: `grpo-sandbox-init FD`. Exec'ing it instead of running init as a
// copy of the trainer keeps the run's processes out of the trainer's address space (cheap forks,
// and a true ru_maxrss for the program). Not meant to be started by hand.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "reward/sandbox_init.h"

int main(int argc, char** argv) {
  using namespace grpo::reward::sandbox_detail;
  if (argc != 2) {
    std::fprintf(stderr, "grpo-sandbox-init: started by the grpo sandbox only (usage: grpo-sandbox-init PLAN_FD)\n");
    return 2;
  }
  char* end = nullptr;
  const long fd = std::strtol(argv[1], &end, 10);
  if (!end || *end != '\0' || fd < 0) return 2;
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = pread(static_cast<int>(fd), buf, sizeof buf, static_cast<off_t>(bytes.size()));
    if (n < 0) return 3;
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  close(static_cast<int>(fd));
  static Plan plan;  // lives until exit: the stage children run on its stack buffer
  if (!decode_plan(bytes, plan)) return 4;
  plan.sync_fd = -1;  // the host's go was read before the exec
  init_main(plan, /*wait_for_go=*/false);
}
