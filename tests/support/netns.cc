#include "netns.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "common/fd.h"

namespace kagami::test {

bool is_root() { return geteuid() == 0; }

namespace {
std::atomic<int> g_net_seq{0};

int sh(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
}  // namespace

TestNetwork::TestNetwork() {
  // pid (mod 10^4) plus a per-process sequence keeps names unique and within
  // IFNAMSIZ: "kgt" + 4 + 1 + "h" + 2 digits = 11 characters.
  id_ = std::to_string(getpid() % 10000) + std::string(1, static_cast<char>('a' + g_net_seq++ % 26));
}

TestNetwork::~TestNetwork() {
  for (const auto& h : hosts_) {
    // Deleting the namespace destroys the peer end, which takes the root end too;
    // delete the root end explicitly anyway in case the namespace is already gone.
    sh("ip netns del " + h.ns);
    sh("ip link del " + h.host_if);
  }
}

Result<TestHost> TestNetwork::add_host() {
  const int n = static_cast<int>(hosts_.size()) + 1;
  // Subnet octet: spread networks of different processes apart.
  const int octet = (getpid() * 7 + g_net_seq * 13 + n) % 200 + 20;
  TestHost h;
  h.ns = "kgt-" + id_ + "-" + std::to_string(n);
  h.host_if = "kgt" + id_ + "h" + std::to_string(n);
  h.peer_if = "kgt" + id_ + "p" + std::to_string(n);
  h.host_ip = "10.199." + std::to_string(octet) + ".1";
  h.peer_ip = "10.199." + std::to_string(octet) + ".2";
  h.host_ip6 = "fd00:199:" + std::to_string(octet) + "::1";
  h.peer_ip6 = "fd00:199:" + std::to_string(octet) + "::2";
  hosts_.push_back(h);  // registered first, so a half-built host is still removed

  const std::vector<std::string> steps = {
      "ip netns add " + h.ns,
      "ip link add " + h.host_if + " type veth peer name " + h.peer_if,
      "ip link set " + h.peer_if + " netns " + h.ns,
      "ip addr add " + h.host_ip + "/24 dev " + h.host_if,
      "ip -6 addr add " + h.host_ip6 + "/64 dev " + h.host_if + " nodad",
      "ip link set " + h.host_if + " up",
      "ip -n " + h.ns + " addr add " + h.peer_ip + "/24 dev " + h.peer_if,
      "ip -n " + h.ns + " -6 addr add " + h.peer_ip6 + "/64 dev " + h.peer_if + " nodad",
      "ip -n " + h.ns + " link set " + h.peer_if + " up",
      "ip -n " + h.ns + " link set lo up",
  };
  for (const auto& s : steps) {
    if (sh(s) != 0) return make_error("test host setup failed at: {}", s);
  }
  h.host_ifindex = static_cast<int>(if_nametoindex(h.host_if.c_str()));
  hosts_.back() = h;
  return h;
}

int TestNetwork::exec_in(const TestHost& h, const std::string& cmd) {
  return sh("ip netns exec " + h.ns + " sh -c '" + cmd + "'");
}

Result<std::string> TestNetwork::capture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return errno_error(errno, "popen {}", cmd);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = pclose(p);
  if (rc != 0) return make_error("command failed ({}): {}", rc, cmd);
  return out;
}

Result<void> send_udp(const std::string& dst_ip, int port, const std::string& payload, int count) {
  Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  if (!s.valid()) return errno_error(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, dst_ip.c_str(), &a.sin_addr) != 1) return make_error("bad address {}", dst_ip);
  for (int i = 0; i < count; i++) {
    if (::sendto(s.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
      return errno_error(errno, "sendto {}:{}", dst_ip, port);
  }
  return ok();
}

}  // namespace kagami::test
