// Test pods: network namespaces on one Linux bridge in the root namespace,
// each joined by a veth pair whose root-side end ("host_if", enslaved to
// the bridge) is where the policy module attaches, as on a node. Names are
// per process (kgt-pol<pid>-<n>, kgtp<pid>h<n>, bridge kgtp<pid>br) so tests
// may run in parallel, and scripts/cleanup-test-leftovers.sh sweeps them
// (kgt-* namespaces, kgt* links). Removed in the destructor, which also
// runs when an assertion fails.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/result.h"
#include "support/shell.h"

namespace kagami::policy::test {

struct Pod {
  std::string name, ns, host_if, ip, ip6;
};

class PodNet {
 public:
  PodNet() : id_(std::to_string(getpid() % 100000)), br_("kgtp" + id_ + "br") {}
  ~PodNet() {
    for (const auto& p : pods_) {
      kagami::test::sh("ip netns del " + p.ns + " 2>/dev/null");
      kagami::test::sh("ip link del " + p.host_if + " 2>/dev/null");
    }
    if (bridge_up_) kagami::test::sh("ip link del " + br_ + " 2>/dev/null");
  }
  PodNet(const PodNet&) = delete;
  PodNet& operator=(const PodNet&) = delete;

  Result<Pod> add(const std::string& name) {
    if (!bridge_up_) {
      for (const std::string& c : {"ip link add " + br_ + " type bridge", "ip link set " + br_ + " up"})
        if (auto r = kagami::test::sh(c); r.rc != 0) return make_error("{}: {}", c, r.out);
      bridge_up_ = true;
    }
    const int n = static_cast<int>(pods_.size()) + 1;
    const int net = static_cast<int>(getpid() % 200) + 20;
    Pod p{name, fmt::format("kgt-pol{}-{}", id_, n), fmt::format("kgtp{}h{}", id_, n),
          fmt::format("10.198.{}.{}", net, n), fmt::format("fd98:{:x}::{}", net, n)};
    const std::string peer = fmt::format("kgtp{}p{}", id_, n);
    pods_.push_back(p);
    for (const std::string& c : {
             "ip netns add " + p.ns,
             "ip link add " + p.host_if + " type veth peer name " + peer,
             "ip link set " + peer + " netns " + p.ns,
             "ip link set " + p.host_if + " master " + br_,
             "ip link set " + p.host_if + " up",
             "ip -n " + p.ns + " link set lo up",
             "ip -n " + p.ns + " addr add " + p.ip + "/24 dev " + peer,
             "ip -n " + p.ns + " -6 addr add " + p.ip6 + "/64 dev " + peer + " nodad",
             "ip -n " + p.ns + " link set " + peer + " up",
         })
      if (auto r = kagami::test::sh(c); r.rc != 0) return make_error("{}: {}", c, r.out);
    return p;
  }

  std::string subnet() const { return fmt::format("10.198.{}.0/24", getpid() % 200 + 20); }

 private:
  std::string id_, br_;
  bool bridge_up_ = false;
  std::vector<Pod> pods_;
};

// A socket created inside a pod's namespace (by a thread that entered it;
// the socket keeps its namespace).
inline Fd socket_in(const std::string& ns, int domain, int type, int proto) {
  int out = -1;
  std::thread t([&] {
    Fd nsfd(::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (nsfd.get() < 0 || ::setns(nsfd.get(), CLONE_NEWNET) != 0) return;
    out = ::socket(domain, type | SOCK_CLOEXEC, proto);
  });
  t.join();
  return Fd(out);
}

}  // namespace kagami::policy::test
