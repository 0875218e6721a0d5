#include "host_label.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>

namespace grpo::dist {
namespace {

// The first IPv4 address of interface `name`, or "" (no such interface, or IPv6 only).
std::string ipv4_of(const std::string& name) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* a = list; a && out.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || name != a->ifa_name) continue;
    char buf[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) out = buf;
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace

std::string host_label() {
  char host[256] = {};
  std::string label = ::gethostname(host, sizeof host - 1) == 0 ? host : "?";
  for (const char* var : {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    std::string ifname(v);
    ifname = ifname.substr(0, ifname.find(','));  // a list: the first one
    if (std::string addr = ipv4_of(ifname); !addr.empty()) return label + " " + addr + " (" + ifname + ")";
    return label;
  }
  return label;
}

}  // namespace grpo::dist
