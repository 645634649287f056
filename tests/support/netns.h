// Test hosts: network namespaces joined to the root namespace by veth pairs.
//
//   root netns                         netns kgt-<id>-<n>
//   kgt<id>h<n>  10.199.<n>.1/24  <-->  kgt<id>p<n>  10.199.<n>.2/24
//               fd00:199:<n>::1/64      fd00:199:<n>::2/64
//
// The root-side end (`host_if`) is where Kagami attaches XDP/TC, exactly as
// it would on a node's interface; traffic to and from the namespace crosses
// it. Names are unique per process (pid-derived id), so tests may run in
// parallel. Everything is removed in the destructor, which also runs when an
// assertion fails; scripts/cleanup-test-leftovers.sh sweeps what a killed
// process left.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace kagami::test {

// True when the process may load BPF programs and create namespaces.
bool is_root();

// Use at the top of a test that needs root: skips visibly with the reason.
#define KAGAMI_REQUIRE_ROOT()                                                   \
  do {                                                                          \
    if (!::kagami::test::is_root())                                             \
      GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN): run the test as root"; \
  } while (0)

struct TestHost {
  std::string ns;       // namespace name
  std::string host_if;  // veth end in the root namespace
  std::string peer_if;  // veth end inside the namespace
  std::string host_ip;  // IPv4 of host_if
  std::string peer_ip;  // IPv4 of peer_if
  std::string host_ip6;
  std::string peer_ip6;
  int host_ifindex = 0;
};

class TestNetwork {
 public:
  TestNetwork();
  ~TestNetwork();
  TestNetwork(const TestNetwork&) = delete;
  TestNetwork& operator=(const TestNetwork&) = delete;

  // Creates one more namespace + veth pair, up and addressed.
  Result<TestHost> add_host();

  // Runs a shell command inside a host's namespace; returns its exit code.
  static int exec_in(const TestHost& h, const std::string& cmd);
  // Runs a shell command and returns its stdout.
  static Result<std::string> capture(const std::string& cmd);

  const std::vector<TestHost>& hosts() const { return hosts_; }

 private:
  std::string id_;
  std::vector<TestHost> hosts_;
};

// Sends `count` UDP datagrams of `payload` bytes from the root namespace to
// dst_ip:port (no reply needed; the packets cross host_if on egress).
Result<void> send_udp(const std::string& dst_ip, int port, const std::string& payload, int count);

}  // namespace kagami::test
