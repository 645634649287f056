// The transport programs on the real kernel, both hook variants: real
// traffic from a process in a test cgroup to a test host in a network
// namespace, counters compared with what was sent and with the kernel's own
// per-socket accounting (TCP_INFO, SO_MEMINFO).
//
// Each test loads the skeleton directly (no program manager), attaches the
// cgroup_skb programs to its own test cgroup (so nothing else on the machine
// is affected) and the tracepoint programs globally; assertions look only at
// keys of the test cgroup or of the test namespace, so traffic of parallel
// tests cannot disturb them.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "common/fd.h"
#include "identity/identity.h"
#include "modules/transport/abi.h"
#include "modules/transport/transport.h"
#include "support/cgroup.h"
#include "support/netns.h"
#include "transport.skel.h"
#include "transport_tp.skel.h"

namespace {

using kagami::Fd;
using kagami::modules::TransportHooks;
using nlohmann::json;

// ---- fixtures ---------------------------------------------------------------

// A cgroup v2 directory for the test, removed at the end even on failure.
using kagami::test::TestCgroup;

// One loaded variant with its links; destroyed (links detached) at scope end.
struct Loaded {
  TransportHooks hooks;
  bpf_object* obj = nullptr;
  std::function<void()> destroy;
  std::vector<bpf_link*> links;
  kagami::modules::TransportMapFds fds;
  ~Loaded() {
    for (auto* l : links) bpf_link__destroy(l);
    if (destroy) destroy();
  }
};

int map_fd(bpf_object* obj, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, name);
  return m ? bpf_map__fd(m) : -1;
}

// Opens, optionally shrinks maps (overflow test), loads and attaches.
template <typename Skel>
::testing::AssertionResult load_variant(Skel* (*open)(), int (*load)(Skel*), void (*destroy)(Skel*),
                                        bpf_object* Skel::*objp, TransportHooks hooks, const std::string& cgroup,
                                        uint32_t pod_map_entries, std::unique_ptr<Loaded>& out) {
  Skel* s = open();
  if (!s) return ::testing::AssertionFailure() << "open skeleton: " << std::strerror(errno);
  out = std::make_unique<Loaded>();
  out->hooks = hooks;
  out->destroy = [s, destroy] { destroy(s); };
  out->obj = s->*objp;
  if (pod_map_entries) {
    bpf_map__set_max_entries(bpf_object__find_map_by_name(out->obj, TRANSPORT_MAP_POD_TRAFFIC), pod_map_entries);
    bpf_map__set_max_entries(bpf_object__find_map_by_name(out->obj, TRANSPORT_MAP_POD_TCP), pod_map_entries);
  }
  if (int err = load(s)) return ::testing::AssertionFailure() << "load: " << std::strerror(-err);
  Fd cg(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY));
  if (!cg.valid()) return ::testing::AssertionFailure() << "open " << cgroup;
  bpf_program* p;
  bpf_object__for_each_program(p, out->obj) {
    bpf_link* l = bpf_program__type(p) == BPF_PROG_TYPE_CGROUP_SKB ? bpf_program__attach_cgroup(p, cg.get())
                                                                   : bpf_program__attach(p);
    if (!l) return ::testing::AssertionFailure() << "attach " << bpf_program__name(p) << ": " << std::strerror(errno);
    out->links.push_back(l);
  }
  auto& f = out->fds;
  f.pod_traffic = map_fd(out->obj, TRANSPORT_MAP_POD_TRAFFIC);
  f.pod_tcp = map_fd(out->obj, TRANSPORT_MAP_POD_TCP);
  f.tcp_state = map_fd(out->obj, TRANSPORT_MAP_TCP_STATE);
  f.drops = map_fd(out->obj, TRANSPORT_MAP_DROPS);
  f.other_traffic = map_fd(out->obj, TRANSPORT_MAP_OTHER_TRAFFIC);
  f.other_tcp = map_fd(out->obj, TRANSPORT_MAP_OTHER_TCP);
  f.overflow = map_fd(out->obj, TRANSPORT_MAP_OVERFLOW);
  f.hook_runs = map_fd(out->obj, TRANSPORT_MAP_HOOK_RUNS);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult load(TransportHooks h, const std::string& cgroup, std::unique_ptr<Loaded>& out,
                                uint32_t pod_map_entries = 0) {
  if (auto t = kagami::bpf::ensure_tracefs(); !t)  // libbpf finds tracepoint ids there
    return ::testing::AssertionFailure() << t.error().message;
  if (h == TransportHooks::TpBtf)
    return load_variant<transport_bpf>(transport_bpf__open, transport_bpf__load, transport_bpf__destroy,
                                       &transport_bpf::obj, h, cgroup, pod_map_entries, out);
  return load_variant<transport_tp_bpf>(transport_tp_bpf__open, transport_tp_bpf__load, transport_tp_bpf__destroy,
                                        &transport_tp_bpf::obj, h, cgroup, pod_map_entries, out);
}

// Runs `body` in a forked child that first moves itself into `cgroup`
// (sockets take their cgroup when created). The child's exit code is the
// body's return value; a pipe carries up to 8 numbers back.
struct ChildResult {
  int exit_code = -1;
  std::vector<int64_t> values;
};

ChildResult run_in_cgroup(const std::string& cgroup, const std::function<int(std::vector<int64_t>&)>& body) {
  int p[2];
  if (::pipe(p) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    int fd = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(100);
    ::close(fd);
    std::vector<int64_t> out;
    int rc = body(out);
    for (int64_t v : out)
      if (::write(p[1], &v, sizeof(v)) != sizeof(v)) _exit(101);
    _exit(rc);
  }
  ::close(p[1]);
  ChildResult r;
  int64_t v;
  while (::read(p[0], &v, sizeof(v)) == sizeof(v)) r.values.push_back(v);
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A socket created inside a test host's namespace (setns on a helper thread:
// the namespace belongs to the socket for life, whichever thread uses it).
Fd socket_in(const kagami::test::TestHost& h, int type) {
  int out = -1;
  std::thread t([&] {
    Fd ns(::open(("/var/run/netns/" + h.ns).c_str(), O_RDONLY));
    if (ns.valid() && ::setns(ns.get(), CLONE_NEWNET) == 0) out = ::socket(AF_INET, type, 0);
  });
  t.join();
  return Fd(out);
}

uint32_t netns_ino(const kagami::test::TestHost& h) {
  struct stat st {};
  ::stat(("/var/run/netns/" + h.ns).c_str(), &st);
  return static_cast<uint32_t>(st.st_ino);
}

int ifindex_in(const kagami::test::TestHost& h) {
  auto out = kagami::test::TestNetwork::capture("ip netns exec " + h.ns + " cat /sys/class/net/" + h.peer_if +
                                                "/ifindex");
  return out ? std::stoi(*out) : -1;
}

sockaddr_in addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

json snapshot(const Loaded& l, kagami::identity::Resolver* r = nullptr) {
  kagami::modules::TransportView v;
  v.resolver = r;
  v.node = "test-node";
  auto j = kagami::modules::transport_json_from_fds(l.fds, v);
  EXPECT_TRUE(j) << j.error().message;
  return j ? *j : json{};
}

json pod(const json& snap, uint64_t cgid) {
  for (const auto& p : snap["pods"])
    if (p["cgroup_id"].get<uint64_t>() == cgid) return p;
  return json{};
}

uint64_t state_count(const json& p, const std::string& from, const std::string& to) {
  if (!p.contains("states")) return 0;
  for (const auto& s : p["states"])
    if (s["from"] == from && s["to"] == to) return s["count"].get<uint64_t>();
  return 0;
}

uint64_t drops_where(const json& snap, const std::function<bool(const json&)>& pred) {
  uint64_t n = 0;
  for (const auto& d : snap["drops"])
    if (pred(d)) n += d["count"].get<uint64_t>();
  return n;
}

class Transport : public ::testing::TestWithParam<TransportHooks> {
 protected:
  // The common start of the traffic tests: a test cgroup, one test host and
  // the transport programs loaded in this test's hook flavour. Members are
  // declared so that teardown runs programs -> host -> network -> cgroup.
  void start(const std::string& cgroup_suffix) {
    cg_ = std::make_unique<TestCgroup>(cgroup_suffix);
    ASSERT_TRUE(cg_->error().empty()) << cg_->error();
    auto h = net_.add_host();
    ASSERT_TRUE(h) << h.error().message;
    h_ = *h;
    ASSERT_TRUE(load(GetParam(), cg_->path(), l_));
  }

  std::unique_ptr<TestCgroup> cg_;
  kagami::test::TestNetwork net_;
  kagami::test::TestHost h_;
  std::unique_ptr<Loaded> l_;
};

std::string name_of(const ::testing::TestParamInfo<TransportHooks>& i) {
  return std::string(kagami::modules::to_string(i.param));
}

constexpr int kClosedPort = 9;  // discard: nothing listens on it in a fresh namespace

// ---- UDP --------------------------------------------------------------------

TEST_P(Transport, UdpEgressCountsAndNoSocketDrops) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("udp-out"));
  TestCgroup& cg = *cg_;
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;

  constexpr int kN = 50, kSize = 100;
  auto r = run_in_cgroup(cg.path(), [&](std::vector<int64_t>&) {
    return kagami::test::send_udp(h->peer_ip, kClosedPort, std::string(kSize, 'x'), kN) ? 0 : 1;
  });
  ASSERT_EQ(r.exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // veth delivery is async (backlog softirq)

  json s = snapshot(*l);
  json p = pod(s, cg.id());
  ASSERT_FALSE(p.is_null()) << s.dump(1);
  EXPECT_EQ(p["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), uint64_t(kN));
  EXPECT_EQ(p["traffic"]["egress"]["udp"]["bytes"].get<uint64_t>(), uint64_t(kN * (kSize + 8 + 20)));
  EXPECT_EQ(p["traffic"]["ingress"]["udp"]["packets"].get<uint64_t>(), 0u);

  // Every datagram dies in the peer namespace: no socket on that port.
  const uint32_t ns = netns_ino(*h);
  const int ifi = ifindex_in(*h);
  EXPECT_EQ(drops_where(s,
                        [&](const json& d) {
                          return d["netns"] == ns && d["ifindex"] == ifi && d["reason_name"] == "NO_SOCKET" &&
                                 d["protocol"] == "udp";
                        }),
            uint64_t(kN))
      << s["drops"].dump(1);
  EXPECT_GT(s["hook_runs"]["kfree_skb"].get<uint64_t>(), 0u);
  EXPECT_GE(s["hook_runs"]["cgroup_egress"].get<uint64_t>(), uint64_t(kN));
}

TEST_P(Transport, UdpIngressCountsAndReceiveBufferDrops) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("udp-in"));
  TestCgroup& cg = *cg_;
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;

  constexpr int kDelivered = 20, kFlood = 400, kSize = 200, kPort = 40123;
  Fd sender = socket_in(*h, SOCK_DGRAM);
  ASSERT_TRUE(sender.valid());
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  std::thread parent([&] {
    char c;
    if (::read(ready[0], &c, 1) != 1) return;
    auto dst = addr(h->host_ip, kPort);
    std::string payload(kSize, 'y');
    for (int i = 0; i < kDelivered; i++) {  // paced: the reader keeps up, nothing dropped yet
      ::sendto(sender.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (::read(ready[0], &c, 1) != 1) return;
    for (int i = 0; i < kFlood; i++)
      ::sendto(sender.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    (void)!::write(go[1], "g", 1);
  });
  auto r = run_in_cgroup(cg.path(), [&](std::vector<int64_t>& out) {
    Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
    int small = 4096;  // the kernel doubles it; a few datagrams fit, the flood does not
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    auto a = addr(h->host_ip, kPort);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 2;
    timeval tv{2, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (::write(ready[1], "r", 1) != 1) return 3;
    char buf[2048];
    int got = 0;
    while (got < kDelivered && ::recv(s.get(), buf, sizeof(buf), 0) == kSize) got++;
    if (::write(ready[1], "r", 1) != 1) return 4;
    char c;
    if (::read(go[0], &c, 1) != 1) return 5;  // flood sent, not read
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(mem);
    if (::getsockopt(s.get(), SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) return 6;
    int queued = 0;
    while (::recv(s.get(), buf, sizeof(buf), MSG_DONTWAIT) == kSize) queued++;
    out = {got, mem[SK_MEMINFO_DROPS], queued};
    return 0;
  });
  parent.join();
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.values.size(), 3u);
  ASSERT_EQ(r.values[0], kDelivered);
  const int64_t kernel_drops = r.values[1], queued = r.values[2];
  ASSERT_GT(kernel_drops, 0) << "flood did not overflow the receive buffer";

  json s = snapshot(*l);
  json p = pod(s, cg.id());
  ASSERT_FALSE(p.is_null()) << s.dump(1);
  // cgroup_skb ingress runs before the receive-buffer check: everything
  // that reached the socket is counted, delivered or dropped.
  const uint64_t reached = uint64_t(kDelivered + queued + kernel_drops);
  EXPECT_EQ(p["traffic"]["ingress"]["udp"]["packets"].get<uint64_t>(), reached);
  EXPECT_EQ(p["traffic"]["ingress"]["udp"]["bytes"].get<uint64_t>(), reached * (kSize + 28));
  // The kernel's own per-socket drop counter and ours agree exactly; the
  // socket is known at this drop (kfree_skb's rx_sk, present on this kernel).
  EXPECT_EQ(drops_where(s,
                        [&](const json& d) {
                          return d["cgroup_id"] == cg.id() && d["reason_name"] == "SOCKET_RCVBUFF" &&
                                 d["protocol"] == "udp";
                        }),
            uint64_t(kernel_drops))
      << s["drops"].dump(1);
}

TEST_P(Transport, UdpOverIpv6CountsAndDrops) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("udp6"));
  TestCgroup& cg = *cg_;
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;

  constexpr int kN = 17, kSize = 60;
  auto r = run_in_cgroup(cg.path(), [&](std::vector<int64_t>&) {
    Fd s(::socket(AF_INET6, SOCK_DGRAM, 0));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(kClosedPort);
    if (inet_pton(AF_INET6, h->peer_ip6.c_str(), &a.sin6_addr) != 1) return 2;
    std::string payload(kSize, 'v');
    for (int i = 0; i < kN; i++)
      if (::sendto(s.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
        return 3;
    return 0;
  });
  ASSERT_EQ(r.exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  json s = snapshot(*l);
  json p = pod(s, cg.id());
  ASSERT_FALSE(p.is_null()) << s.dump(1);
  EXPECT_EQ(p["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), uint64_t(kN));
  EXPECT_EQ(p["traffic"]["egress"]["udp"]["bytes"].get<uint64_t>(), uint64_t(kN * (kSize + 8 + 40)));
  // Classified from the IPv6 next-header byte at drop time.
  const uint32_t ns = netns_ino(*h);
  EXPECT_EQ(drops_where(s,
                        [&](const json& d) {
                          return d["netns"] == ns && d["reason_name"] == "NO_SOCKET" && d["protocol"] == "udp";
                        }),
            uint64_t(kN))
      << s["drops"].dump(1);
}

// Drops on the node's own interfaces carry the interface name: datagrams
// from the test host to a closed port on the root-namespace side die on
// host_if, owned by no socket.
TEST_P(Transport, DropsOnNodeInterfacesAreNamed) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("ifname"));
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;
  constexpr int kN = 6, kPort = 40126;  // nothing listens there in the root namespace
  Fd s = socket_in(*h, SOCK_DGRAM);
  ASSERT_TRUE(s.valid());
  auto dst = addr(h->host_ip, kPort);
  for (int i = 0; i < kN; i++)
    ASSERT_GT(::sendto(s.get(), "drop", 4, 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  kagami::modules::TransportView v;
  v.node = "n1";
  auto fams = kagami::modules::transport_metrics_from_fds(l->fds, v);
  ASSERT_TRUE(fams) << fams.error().message;
  double got = -1;
  for (const auto& f : *fams)
    for (const auto& smp : f.samples)
      if (f.name == "kagami_transport_drops_total" && smp.labels.at("interface") == h->host_if) {
        EXPECT_EQ(smp.labels.at("netns"), "host");
        EXPECT_EQ(smp.labels.at("workload"), "none");
        if (smp.labels.at("reason") == "NO_SOCKET" && smp.labels.at("protocol") == "udp") got = smp.value;
      }
  EXPECT_EQ(got, kN);
}

// ---- TCP --------------------------------------------------------------------

TEST_P(Transport, TcpResetsAndStateChanges) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("tcp-rst"));
  TestCgroup& cg = *cg_;
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;

  constexpr int kRefused = 5, kAborted = 3, kPort = 40124;
  Fd listener = socket_in(*h, SOCK_STREAM);
  ASSERT_TRUE(listener.valid());
  auto la = addr(h->peer_ip, kPort);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&la), sizeof(la)), 0);
  ASSERT_EQ(::listen(listener.get(), 16), 0);

  auto r = run_in_cgroup(cg.path(), [&](std::vector<int64_t>& out) {
    int refused = 0;
    for (int i = 0; i < kRefused; i++) {
      Fd s(::socket(AF_INET, SOCK_STREAM, 0));
      auto a = addr(h->peer_ip, kClosedPort);
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 && errno == ECONNREFUSED) refused++;
    }
    for (int i = 0; i < kAborted; i++) {
      Fd s(::socket(AF_INET, SOCK_STREAM, 0));
      auto a = addr(h->peer_ip, kPort);
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 2;
      linger lg{1, 0};  // close() sends RST: the abortive close
      ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    out = {refused};
    return 0;
  });
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.values.size(), 1u);
  ASSERT_EQ(r.values[0], kRefused);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  json s = snapshot(*l);
  json p = pod(s, cg.id());
  ASSERT_FALSE(p.is_null()) << s.dump(1);
  EXPECT_EQ(p["tcp"]["resets_received"].get<uint64_t>(), uint64_t(kRefused));
  EXPECT_EQ(p["tcp"]["resets_sent"].get<uint64_t>(), uint64_t(kAborted));
  EXPECT_EQ(state_count(p, "CLOSE", "SYN_SENT"), uint64_t(kRefused + kAborted)) << p["states"].dump();
  EXPECT_EQ(state_count(p, "SYN_SENT", "CLOSE"), uint64_t(kRefused)) << p["states"].dump();
  EXPECT_EQ(state_count(p, "SYN_SENT", "ESTABLISHED"), uint64_t(kAborted)) << p["states"].dump();
  EXPECT_EQ(state_count(p, "ESTABLISHED", "CLOSE"), uint64_t(kAborted)) << p["states"].dump();
  // The SYNs to the closed port die in the peer namespace, unowned.
  const uint32_t ns = netns_ino(*h);
  EXPECT_EQ(drops_where(s,
                        [&](const json& d) {
                          return d["netns"] == ns && d["reason_name"] == "NO_SOCKET" && d["protocol"] == "tcp" &&
                                 d["cgroup_id"] == 0;
                        }),
            uint64_t(kRefused))
      << s["drops"].dump(1);
  // SYN, ACK and RST leave through cgroup_skb egress as TCP.
  EXPECT_GE(p["traffic"]["egress"]["tcp"]["packets"].get<uint64_t>(), uint64_t(kRefused + 3 * kAborted));
}

TEST_P(Transport, TcpRetransmitsAndRtt) {
  KAGAMI_REQUIRE_ROOT();
  ASSERT_NO_FATAL_FAILURE(start("tcp-rtx"));
  TestCgroup& cg = *cg_;
  const kagami::test::TestHost* h = &h_;
  auto& l = l_;

  constexpr int kPort = 40125;
  Fd listener = socket_in(*h, SOCK_STREAM);
  ASSERT_TRUE(listener.valid());
  auto la = addr(h->peer_ip, kPort);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&la), sizeof(la)), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);

  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  // Blackholing the way back makes the peer's ACKs vanish, so the sender's
  // retransmission timer fires (no netem on this kernel, and the data path
  // itself stays intact, so each retransmission really leaves).
  std::thread parent([&] {
    char c;
    if (::read(ready[0], &c, 1) != 1) return;
    kagami::test::TestNetwork::exec_in(*h, "ip route add blackhole " + h->host_ip + "/32");
    (void)!::write(go[1], "g", 1);
  });
  auto r = run_in_cgroup(cg.path(), [&](std::vector<int64_t>& out) {
    Fd s(::socket(AF_INET, SOCK_STREAM, 0));
    auto a = addr(h->peer_ip, kPort);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 2;
    char buf[100] = {};
    for (int i = 0; i < 10; i++) {  // ACKed segments: RTT samples
      if (::send(s.get(), buf, sizeof(buf), 0) != sizeof(buf)) return 3;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (::write(ready[1], "r", 1) != 1) return 4;
    char c;
    if (::read(go[0], &c, 1) != 1) return 5;
    if (::send(s.get(), buf, sizeof(buf), 0) != sizeof(buf)) return 6;
    // RTO starts at >= 200 ms and doubles: 1.5 s gives a few retransmissions.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    tcp_info ti{};
    socklen_t len = sizeof(ti);
    if (::getsockopt(s.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return 7;
    out = {ti.tcpi_total_retrans, ti.tcpi_rtt};
    linger lg{1, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return 0;
  });
  parent.join();
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.values.size(), 2u);
  const int64_t total_retrans = r.values[0];
  ASSERT_GT(total_retrans, 0) << "no retransmission happened";

  json s = snapshot(*l);
  json p = pod(s, cg.id());
  ASSERT_FALSE(p.is_null()) << s.dump(1);
  EXPECT_EQ(p["tcp"]["retransmits"].get<int64_t>(), total_retrans);
  const auto& rtt = p["tcp"]["rtt"];
  const uint64_t samples = rtt["samples"].get<uint64_t>();
  EXPECT_GE(samples, 1u);
  uint64_t in_buckets = 0, fast = 0;
  for (size_t i = 0; i < rtt["buckets"].size(); i++) {
    in_buckets += rtt["buckets"][i].get<uint64_t>();
    if (i < 17) fast += rtt["buckets"][i].get<uint64_t>();  // < 131 ms
  }
  EXPECT_EQ(in_buckets, samples);
  EXPECT_EQ(fast, samples) << "a veth RTT is far below 131 ms: " << rtt.dump();
  EXPECT_GT(rtt["sum_us"].get<uint64_t>(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Hooks, Transport, ::testing::Values(TransportHooks::TpBtf, TransportHooks::Tracepoint),
                         name_of);

// ---- bounds, identity and metrics ---------------------------------------------

TEST(TransportBounds, FullMapFoldsIntoOtherAndCounts) {
  KAGAMI_REQUIRE_ROOT();
  TestCgroup cg("fold");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  TestCgroup a("fold/a"), b("fold/b");  // two sockets' cgroups, room for one
  ASSERT_TRUE(a.error().empty() && b.error().empty()) << a.error() << b.error();
  kagami::test::TestNetwork net;
  auto h = net.add_host();
  ASSERT_TRUE(h) << h.error().message;
  std::unique_ptr<Loaded> l;
  ASSERT_TRUE(load(TransportHooks::TpBtf, cg.path(), l, /*pod_map_entries=*/1));

  auto send = [&](const TestCgroup& c, int n) {
    return run_in_cgroup(c.path(), [&](std::vector<int64_t>&) {
             return kagami::test::send_udp(h->peer_ip, kClosedPort, "abcd", n) ? 0 : 1;
           }).exit_code;
  };
  ASSERT_EQ(send(a, 7), 0);
  ASSERT_EQ(send(b, 11), 0);
  json s = snapshot(*l);
  EXPECT_EQ(pod(s, a.id())["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), 7u);
  EXPECT_TRUE(pod(s, b.id()).is_null() || !pod(s, b.id())["traffic"].contains("egress") ||
              pod(s, b.id())["traffic"]["egress"]["udp"]["packets"] == 0);
  EXPECT_EQ(s["other"]["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), 11u);
  EXPECT_EQ(s["overflow"]["pod_traffic"].get<uint64_t>(), 11u);

  // The metrics show the folded counts under workload="other" and count them.
  kagami::modules::TransportView v;
  v.node = "n1";
  auto fams = kagami::modules::transport_metrics_from_fds(l->fds, v);
  ASSERT_TRUE(fams) << fams.error().message;
  bool saw_other = false, saw_overflow = false;
  for (const auto& f : *fams) {
    for (const auto& smp : f.samples) {
      if (f.name == "kagami_transport_packets_total" && smp.labels.at("workload") == "other" &&
          smp.labels.at("direction") == "egress" && smp.labels.at("protocol") == "udp") {
        EXPECT_EQ(smp.value, 11);
        saw_other = true;
      }
      if (f.name == "kagami_transport_kernel_overflow_total" && smp.labels.at("map") == "pod_traffic") {
        EXPECT_EQ(smp.value, 11);
        saw_overflow = true;
      }
    }
  }
  EXPECT_TRUE(saw_other);
  EXPECT_TRUE(saw_overflow);
}

TEST(TransportMetrics, TopNFoldsWorkloadsAndLabelsIdentity) {
  KAGAMI_REQUIRE_ROOT();
  TestCgroup cg("topn");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  TestCgroup a("topn/a"), b("topn/b");
  ASSERT_TRUE(a.error().empty() && b.error().empty());
  kagami::test::TestNetwork net;
  auto h = net.add_host();
  ASSERT_TRUE(h) << h.error().message;
  std::unique_ptr<Loaded> l;
  ASSERT_TRUE(load(TransportHooks::Tracepoint, cg.path(), l));
  auto send = [&](const TestCgroup& c, int n) {
    return run_in_cgroup(c.path(), [&](std::vector<int64_t>&) {
             return kagami::test::send_udp(h->peer_ip, kClosedPort, std::string(50, 'z'), n) ? 0 : 1;
           }).exit_code;
  };
  ASSERT_EQ(send(a, 30), 0);  // heavier: keeps its own series
  ASSERT_EQ(send(b, 3), 0);   // folded with top_n_pods = 1

  kagami::identity::Resolver resolver("/sys/fs/cgroup");
  kagami::modules::TransportView v;
  v.resolver = &resolver;
  v.node = "n1";
  v.top_n_pods = 1;
  auto fams = kagami::modules::transport_metrics_from_fds(l->fds, v);
  ASSERT_TRUE(fams) << fams.error().message;
  double a_packets = -1, other_packets = -1, folded = -1;
  for (const auto& f : *fams)
    for (const auto& smp : f.samples) {
      if (f.name == "kagami_transport_packets_total" && smp.labels.at("direction") == "egress" &&
          smp.labels.at("protocol") == "udp") {
        EXPECT_EQ(smp.labels.at("node"), "n1");
        if (smp.labels.at("workload") == a.rel()) a_packets = smp.value;
        if (smp.labels.at("workload") == "other") other_packets = smp.value;
        EXPECT_NE(smp.labels.at("workload"), b.rel()) << "b should be folded";
      }
      if (f.name == "kagami_transport_folded_series" && smp.labels.at("family") == "workload") folded = smp.value;
    }
  EXPECT_EQ(a_packets, 30);
  EXPECT_EQ(other_packets, 3);
  EXPECT_EQ(folded, 1);

  // With state kept between scrapes, membership is sticky: b growing past a
  // does not swap them, so neither a's series nor "other" goes backwards.
  auto state = kagami::modules::make_transport_retired();
  v.retired = state.get();
  auto egress_udp = [&](const std::string& workload) {
    auto m = kagami::modules::transport_metrics_from_fds(l->fds, v);
    EXPECT_TRUE(m);
    if (!m) return -1.0;
    for (const auto& f : *m)
      for (const auto& smp : f.samples)
        if (f.name == "kagami_transport_packets_total" && smp.labels.at("workload") == workload &&
            smp.labels.at("direction") == "egress" && smp.labels.at("protocol") == "udp")
          return smp.value;
    return -1.0;
  };
  EXPECT_EQ(egress_udp(a.rel()), 30);  // first scrape picks a (heavier)
  ASSERT_EQ(send(b, 60), 0);           // b: 63 > a: 30
  EXPECT_EQ(egress_udp(a.rel()), 30);
  EXPECT_EQ(egress_udp("other"), 63);
  EXPECT_EQ(egress_udp(b.rel()), -1);
  // Stateless, the heavier b would take the slot instead.
  v.retired = nullptr;
  EXPECT_EQ(egress_udp(b.rel()), 63);
  EXPECT_EQ(egress_udp("other"), 30);
}

// Dead cgroups leave the kernel maps (making room) and their counts move to
// workload="other", so no counter goes backwards.
TEST(TransportBounds, PruneMovesDeadCgroupsToOther) {
  KAGAMI_REQUIRE_ROOT();
  TestCgroup cg("prune");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  TestCgroup live("prune/live");
  ASSERT_TRUE(live.error().empty());
  auto dead = std::make_unique<TestCgroup>("prune/dead");
  ASSERT_TRUE(dead->error().empty());
  const uint64_t dead_id = dead->id();
  kagami::test::TestNetwork net;
  auto h = net.add_host();
  ASSERT_TRUE(h) << h.error().message;
  std::unique_ptr<Loaded> l;
  ASSERT_TRUE(load(TransportHooks::TpBtf, cg.path(), l));
  auto send = [&](const TestCgroup& c, int n) {
    return run_in_cgroup(c.path(), [&](std::vector<int64_t>&) {
             return kagami::test::send_udp(h->peer_ip, kClosedPort, "pp", n) ? 0 : 1;
           }).exit_code;
  };
  ASSERT_EQ(send(live, 4), 0);
  ASSERT_EQ(send(*dead, 9), 0);
  dead.reset();  // rmdir: the cgroup is gone, its map entry is not
  ASSERT_FALSE(pod(snapshot(*l), dead_id).is_null());

  auto retired = kagami::modules::make_transport_retired();
  auto root = kagami::modules::cgroup2_root("/sys/fs/cgroup");
  ASSERT_TRUE(root);
  // Far below the fill threshold: nothing is touched.
  auto none = kagami::modules::prune_dead_cgroups(l->fds, *root, 0.5, *retired);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(*none, 0u);
  auto n = kagami::modules::prune_dead_cgroups(l->fds, *root, 0.0, *retired);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 1u);

  kagami::modules::TransportView v;
  v.node = "n1";
  v.retired = retired.get();
  auto j = kagami::modules::transport_json_from_fds(l->fds, v);
  ASSERT_TRUE(j);
  EXPECT_TRUE(pod(*j, dead_id).is_null()) << "dead cgroup still in the map";
  EXPECT_EQ(pod(*j, live.id())["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), 4u);
  EXPECT_EQ((*j)["retired"]["traffic"]["egress"]["udp"]["packets"].get<uint64_t>(), 9u);
  auto fams = kagami::modules::transport_metrics_from_fds(l->fds, v);
  ASSERT_TRUE(fams);
  double other = -1, pruned = -1;
  for (const auto& f : *fams)
    for (const auto& smp : f.samples) {
      if (f.name == "kagami_transport_packets_total" && smp.labels.at("workload") == "other" &&
          smp.labels.at("direction") == "egress" && smp.labels.at("protocol") == "udp")
        other = smp.value;
      if (f.name == "kagami_transport_pruned_cgroups_total") pruned = smp.value;
    }
  EXPECT_EQ(other, 9);
  EXPECT_EQ(pruned, 1);
}

// ---- ABI ----------------------------------------------------------------------

// The shared header and both objects agree on every struct (the objects'
// BTF is what the kernel and bpftool see).
TEST(TransportAbi, StructsMatchObjectBtf) {
  for (const char* obj : {"transport.bpf.o", "transport_tp.bpf.o"}) {
    std::string path = std::string(KAGAMI_BPF_DIR) + "/" + obj;
    btf* b = btf__parse(path.c_str(), nullptr);
    ASSERT_NE(b, nullptr) << path;
    auto size_of = [&](const char* name) {
      int id = btf__find_by_name_kind(b, name, BTF_KIND_STRUCT);
      return id > 0 ? btf__resolve_size(b, id) : -1;
    };
    auto offset_of = [&](const char* st, const char* member) -> long {
      int id = btf__find_by_name_kind(b, st, BTF_KIND_STRUCT);
      if (id <= 0) return -1;
      const btf_type* t = btf__type_by_id(b, id);
      const btf_member* m = btf_members(t);
      for (int i = 0; i < btf_vlen(t); i++, m++)
        if (std::string(btf__name_by_offset(b, m->name_off)) == member) return m->offset / 8;
      return -1;
    };
    EXPECT_EQ(size_of("transport_cg_key"), long(sizeof(transport_cg_key))) << obj;
    EXPECT_EQ(size_of("transport_traffic"), long(sizeof(transport_traffic))) << obj;
    EXPECT_EQ(size_of("transport_tcp"), long(sizeof(transport_tcp))) << obj;
    EXPECT_EQ(size_of("transport_state_key"), long(sizeof(transport_state_key))) << obj;
    EXPECT_EQ(size_of("transport_drop_key"), long(sizeof(transport_drop_key))) << obj;
    EXPECT_EQ(offset_of("transport_traffic", "bytes"), long(offsetof(transport_traffic, bytes)));
    EXPECT_EQ(offset_of("transport_tcp", "rtt_hist"), long(offsetof(transport_tcp, rtt_hist)));
    EXPECT_EQ(offset_of("transport_state_key", "new_state"), long(offsetof(transport_state_key, new_state)));
    EXPECT_EQ(offset_of("transport_drop_key", "reason"), long(offsetof(transport_drop_key, reason)));
    EXPECT_EQ(offset_of("transport_drop_key", "l4"), long(offsetof(transport_drop_key, l4)));
    btf__free(b);
  }
}

}  // namespace
