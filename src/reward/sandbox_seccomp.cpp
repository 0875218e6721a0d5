#include "sandbox_seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>

#include "grpo/util/error.h"

namespace grpo::reward {

const std::vector<std::string>& seccomp_denied_syscalls() {
  // Grouped by what they would let a program do beyond its run. Names unknown to this libseccomp
  // or architecture are skipped when the filter is built.
  static const std::vector<std::string> names = {
      // other processes: debugging, memory access, stealing fds
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
      // mounts and namespaces
      "mount", "umount", "umount2", "pivot_root", "chroot", "setns", "unshare", "mount_setattr", "move_mount",
      "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "open_by_handle_at", "name_to_handle_at",
      // kernel code, keys, tracing
      "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf", "perf_event_open",
      "keyctl", "add_key", "request_key", "lookup_dcookie", "fanotify_init", "userfaultfd",
      // the machine
      "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "settimeofday", "clock_settime",
      "clock_adjtime", "adjtimex", "syslog", "sethostname", "setdomainname", "iopl", "ioperm", "vhangup",
      "nfsservctl", "personality",
      // io_uring runs operations the filter never sees
      "io_uring_setup", "io_uring_enter", "io_uring_register"};
  return names;
}

std::vector<uint8_t> build_seccomp_filter() {
  std::unique_ptr<void, void (*)(void*)> ctx(seccomp_init(SCMP_ACT_ALLOW), [](void* c) { seccomp_release(c); });
  GRPO_CHECK(ctx != nullptr, "seccomp_init failed");
  // Foreign-architecture system calls (int 0x80, x32) would bypass a filter written for the native
  // numbers: the default bad-architecture action of libseccomp kills them.
  for (const auto& name : seccomp_denied_syscalls()) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;  // not on this architecture
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    GRPO_CHECK(rc == 0, "seccomp_rule_add(", name, ") failed: errno ", -rc);
  }
  // clone3 passes its flags in memory the filter cannot read: refuse it with ENOSYS so that libc
  // and Python fall back to clone(2), whose flags are checked below.
  int nr3 = seccomp_syscall_resolve_name("clone3");
  if (nr3 != __NR_SCMP_ERROR && nr3 >= 0) seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr3, 0);
  const uint64_t ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
                               CLONE_NEWIPC,  CLONE_NEWUTS, CLONE_NEWCGROUP};
  for (uint64_t f : ns_flags) {
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
    GRPO_CHECK(rc == 0, "seccomp_rule_add(clone) failed: errno ", -rc);
  }
  // Export through a memfd (libseccomp 2.5 has no in-memory export).
  int fd = memfd_create("grpo-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw Error(str("sandbox: memfd_create for the seccomp filter failed: errno ", errno));
  int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc != 0) {
    close(fd);
    throw Error(str("sandbox: seccomp_export_bpf failed: errno ", -rc));
  }
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<uint8_t> out(size > 0 ? static_cast<size_t>(size) : 0);
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got != out.size() || out.empty() || out.size() % 8 != 0)
    throw Error(str("sandbox: exported seccomp filter is malformed (", got, " bytes)"));
  return out;
}

}  // namespace grpo::reward
