#pragma once
// The sandbox's seccomp filter: a deny-list of system calls no scored program needs and that could
// reach beyond the run (debugging other processes, changing mounts or namespaces, loading kernel
// code, reading other processes' memory, rebooting, io_uring which bypasses seccomp, ...).
// Built once on the host with libseccomp and exported as classic BPF, so that the sandbox child
// only has to hand the bytes to the kernel (no allocation between clone and exec).
#include <cstdint>
#include <string>
#include <vector>

namespace grpo::reward {

/// The names of the refused system calls (each fails with EPERM; clone3 fails with ENOSYS so libc
/// falls back to clone, whose namespace flags the filter can inspect). System calls of other
/// architectures (i386/x32 entry points) kill the process.
const std::vector<std::string>& seccomp_denied_syscalls();

/// The filter as a BPF program: [n * 8] bytes, one struct sock_filter each. Throws grpo::Error
/// when libseccomp cannot build or export it.
std::vector<uint8_t> build_seccomp_filter();

}  // namespace grpo::reward
