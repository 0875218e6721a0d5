#pragma once
// How a rank names the machine it runs on in error messages: the host name, and the address this
// rank's collectives use when GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME pins an interface. On a
// cluster the host name tells the nodes apart; in containers or network namespaces that share
// one host name, the address does.
#include <string>

namespace grpo::dist {

/// "node7" or "node7 10.0.3.7 (ib0)": host name, then the first IPv4 address of the first
/// interface named by GLOO_SOCKET_IFNAME (else NCCL_SOCKET_IFNAME), when it has one.
std::string host_label();

}  // namespace grpo::dist
