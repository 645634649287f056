// Truth on real traffic: pods (network namespaces on a bridge) labelled as
// workloads, the module loaded through its own plan()/configure(), and a
// matrix of policies (the Kubernetes NetworkPolicy documentation's
// examples among them) where every probe (TCP, UDP, SCTP as raw packets,
// ICMP echo; both directions) passes or fails exactly as the policy says.
// Then 100 policy changes under continuous traffic: every packet's verdict
// (a flow event carrying the generation that judged it) matches the policy
// of that generation, and every allowed packet arrived.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <net/if.h>
#include <thread>

#include "bpf/map_view.h"
#include "bpf/ringbuf.h"
#include "modules/policy/abi.h"
#include "policy_rig.h"
#include "pod_net.h"

namespace kagami::policy::test {
namespace {

constexpr int kWaitMs = 250;  // a probe that has not arrived by then was dropped (veth: microseconds)

sockaddr_in addr4(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

enum class Proto { Tcp, Udp, Sctp, Icmp };

// TCP: the handshake completes (SYN, SYN-ACK, ACK all cross both hooks).
bool probe_tcp(const Pod& from, const Pod& to, uint16_t port) {
  Fd l = socket_in(to.ns, AF_INET, SOCK_STREAM, 0);
  Fd c = socket_in(from.ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (l.get() < 0 || c.get() < 0) return false;
  int one = 1;
  setsockopt(l.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto la = addr4("0.0.0.0", port);
  if (bind(l.get(), reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || listen(l.get(), 4) != 0) return false;
  auto ta = addr4(to.ip, port);
  connect(c.get(), reinterpret_cast<sockaddr*>(&ta), sizeof ta);
  pollfd p{c.get(), POLLOUT, 0};
  if (::poll(&p, 1, kWaitMs) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

// UDP: the datagram arrives; when it does, the answer must come back too
// (a reply of an allowed flow).
bool probe_udp(const Pod& from, const Pod& to, uint16_t port, bool& replied) {
  Fd s = socket_in(to.ns, AF_INET, SOCK_DGRAM, 0);
  Fd c = socket_in(from.ns, AF_INET, SOCK_DGRAM, 0);
  auto la = addr4("0.0.0.0", port);
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&la), sizeof la) != 0) return false;
  auto ta = addr4(to.ip, port);
  sendto(c.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&ta), sizeof ta);
  replied = false;
  if (!readable(s.get(), kWaitMs)) return false;
  char buf[16];
  sockaddr_in src{};
  socklen_t sl = sizeof src;
  recvfrom(s.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&src), &sl);
  sendto(s.get(), "pong", 4, 0, reinterpret_cast<sockaddr*>(&src), sl);
  replied = readable(c.get(), kWaitMs);
  return true;
}

// SCTP built by hand on raw IP sockets (protocol 132; no SCTP module here):
// an INIT chunk to `port`; the receiver's raw socket sees it or not.
bool probe_sctp(const Pod& from, const Pod& to, uint16_t port) {
  Fd r = socket_in(to.ns, AF_INET, SOCK_RAW, 132);
  Fd c = socket_in(from.ns, AF_INET, SOCK_RAW, 132);
  if (r.get() < 0 || c.get() < 0) return false;
  uint8_t pkt[32] = {};
  const uint16_t sp = htons(5000), dp = htons(port);
  std::memcpy(pkt, &sp, 2);
  std::memcpy(pkt + 2, &dp, 2);
  pkt[12] = 1;   // INIT
  pkt[15] = 20;  // chunk length
  auto ta = addr4(to.ip, 0);
  sendto(c.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ta), sizeof ta);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (std::chrono::steady_clock::now() < until) {
    if (!readable(r.get(), kWaitMs)) return false;
    uint8_t buf[256];
    const ssize_t n = recv(r.get(), buf, sizeof buf, 0);
    if (n >= 24) {
      const size_t ihl = (buf[0] & 0xf) * 4u;
      if (static_cast<size_t>(n) >= ihl + 4 && std::memcmp(buf + ihl + 2, &dp, 2) == 0) return true;
    }
  }
  return false;
}

// ICMP echo over a raw socket; the receiving kernel answers.
bool probe_icmp(const Pod& from, const Pod& to) {
  Fd c = socket_in(from.ns, AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (c.get() < 0) return false;
  static std::atomic<uint16_t> ids{0x4b00};
  const uint16_t id = ids++;
  uint8_t pkt[16] = {8, 0, 0, 0};
  const uint16_t nid = htons(id);
  std::memcpy(pkt + 4, &nid, 2);
  uint32_t sum = 0;
  for (size_t i = 0; i < sizeof pkt; i += 2) sum += (pkt[i] << 8) | pkt[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const uint16_t ck = htons(static_cast<uint16_t>(~sum));
  std::memcpy(pkt + 2, &ck, 2);
  auto ta = addr4(to.ip, 0);
  sendto(c.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ta), sizeof ta);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (std::chrono::steady_clock::now() < until) {
    if (!readable(c.get(), kWaitMs)) return false;
    uint8_t buf[256];
    const ssize_t n = recv(c.get(), buf, sizeof buf, 0);
    const size_t ihl = (buf[0] & 0xf) * 4u;
    if (n >= static_cast<ssize_t>(ihl + 8) && buf[ihl] == 0 && std::memcmp(buf + ihl + 4, &nid, 2) == 0) return true;
  }
  return false;
}

class PolicyLive : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    dir_ = std::filesystem::temp_directory_path() / ("kagami-policy-live-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    for (const char* n : {"db", "frontend", "other", "proj"}) {
      auto p = net_.add(n);
      ASSERT_TRUE(p) << p.error().message;
      pods_[n] = *p;
    }
    nlohmann::json wl = nlohmann::json::array();
    wl.push_back({{"name", "db"}, {"labels", {{"role", "db"}}}, {"netns", pods_["db"].ns}});
    wl.push_back({{"name", "frontend"}, {"labels", {{"role", "frontend"}}}, {"netns", pods_["frontend"].ns}});
    wl.push_back({{"name", "other"}, {"labels", {{"role", "other"}}}, {"netns", pods_["other"].ns}});
    wl.push_back({{"name", "proj"}, {"namespace", "myns"}, {"labels", {{"role", "x"}}}, {"netns", pods_["proj"].ns}});
    nlohmann::json ifs = nlohmann::json::array();
    for (auto& [_, p] : pods_) ifs.push_back(p.host_if);
    section_ = {{"workloads", wl},
                {"files", {(dir_ / "policies").string()}},
                {"interfaces", ifs},
                {"edge_interfaces", {pods_["other"].host_if}},
                {"namespaces", {{"myns", {{"project", "myproject"}}}}},
                {"sample_rate", 1000000},
                {"sample_burst", 1000000}};
    std::filesystem::create_directories(dir_ / "policies");
    auto reqs = module_.plan(section_, ctx_);
    ASSERT_TRUE(reqs) << reqs.error().message;
    ASSERT_EQ(reqs->size(), 1u);
    // The rig's manager loads exactly what the module planned.
    auto r = rig_.open([&] {
      std::vector<std::string> v;
      for (const auto& a : (*reqs)[0].attach) v.push_back(a.to_string());
      return v;
    }());
    ASSERT_TRUE(r) << r.error().message;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Replaces the policy folder's content and applies it through the module.
  Result<void> set_policy(const std::string& yaml) {
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "policies")) std::filesystem::remove(e.path());
    if (!yaml.empty()) std::ofstream(dir_ / "policies" / "p.yaml") << yaml;
    auto reqs = module_.plan(section_, ctx_);
    if (!reqs) return reqs.error();
    return module_.configure(rig_.pm());
  }
  using Expect = std::function<bool(const std::string& from, const std::string& to, Proto p, uint16_t port)>;
  // Every ordered pair of pods, every protocol: the probe result must be
  // what `expect` says.
  // `replies(from, to)`: whether answers come back on a flow the policy
  // lets through (false only where the answer itself is denied).
  void matrix(const std::string& label, const Expect& expect,
              const std::function<bool(const std::string&, const std::string&)>& replies = nullptr) {
    const uint16_t tcp_ports[] = {6379, 5978, 80};
    for (auto& [fn, from] : pods_)
      for (auto& [tn, to] : pods_) {
        if (fn == tn) continue;
        for (uint16_t port : tcp_ports) {
          const bool want = expect(fn, tn, Proto::Tcp, port);
          EXPECT_EQ(probe_tcp(from, to, port), want) << label << ": TCP " << fn << " -> " << tn << ":" << port;
        }
        bool replied = false;
        const bool udp = probe_udp(from, to, 53, replied);
        EXPECT_EQ(udp, expect(fn, tn, Proto::Udp, 53)) << label << ": UDP " << fn << " -> " << tn << ":53";
        if (udp) {
          EXPECT_EQ(replied, replies ? replies(fn, tn) : true) << label << ": the reply of an allowed UDP flow " << fn << " -> " << tn;
        }
        EXPECT_EQ(probe_sctp(from, to, 38412), expect(fn, tn, Proto::Sctp, 38412))
            << label << ": SCTP " << fn << " -> " << tn << ":38412";
        EXPECT_EQ(probe_icmp(from, to), expect(fn, tn, Proto::Icmp, 8)) << label << ": ICMP echo " << fn << " -> " << tn;
      }
  }

  PodNet net_;  // destroyed after the rig: programs go before the links
  std::map<std::string, Pod> pods_;
  std::filesystem::path dir_;
  nlohmann::json section_;
  core::ModuleContext ctx_;
  PolicyModule module_;
  PolicyRig rig_;
};

const std::string kHead = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";

TEST_F(PolicyLive, KubernetesDocsExamplesMatrix) {
  // No policy: everything flows.
  ASSERT_TRUE(set_policy(""));
  matrix("no policy", [](auto&&...) { return true; });

  // docs "default-deny-ingress": every pod of namespace default is isolated
  // for ingress; proj (namespace myns) is not; egress is free, and answers
  // to what a pod sent come back.
  ASSERT_TRUE(set_policy(kHead + "metadata: {name: default-deny-ingress}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"));
  matrix("default-deny-ingress", [](const std::string&, const std::string& to, Proto, uint16_t) { return to == "proj"; });

  // docs "allow-all-ingress".
  ASSERT_TRUE(set_policy(kHead + "metadata: {name: allow-all-ingress}\nspec:\n  podSelector: {}\n  ingress: [{}]\n  policyTypes: [Ingress]\n"));
  matrix("allow-all-ingress", [](auto&&...) { return true; });

  // docs "default-deny-egress": pods of default may send nothing; they
  // still receive from proj (whose answers are replies).
  ASSERT_TRUE(set_policy(kHead + "metadata: {name: default-deny-egress}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n"));
  matrix("default-deny-egress", [](const std::string& from, const std::string&, Proto, uint16_t) { return from == "proj"; });

  // docs "test-network-policy" (role=db): TCP 6379 from role=frontend pods of
  // its namespace or any pod of a namespace labelled project=myproject, or
  // from 172.17.0.0/16 except 172.17.1.0/24; egress only to 10.0.0.0/24 TCP 5978.
  ASSERT_TRUE(set_policy(kHead + R"(metadata: {name: test-network-policy, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
        - namespaceSelector: {matchLabels: {project: myproject}}
        - podSelector: {matchLabels: {role: frontend}}
      ports: [{protocol: TCP, port: 6379}]
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
      ports: [{protocol: TCP, port: 5978}]
)"));
  matrix("test-network-policy", [](const std::string& from, const std::string& to, Proto p, uint16_t port) {
    if (from == "db") return false;  // db's egress: only 10.0.0.0/24
    if (to != "db") return true;
    return p == Proto::Tcp && port == 6379 && (from == "frontend" || from == "proj");
  });
}

TEST_F(PolicyLive, KagamiKindMatrix) {
  // Deny rules, SCTP and ICMP types: db takes SCTP and echo requests from
  // anyone but `other`, and TCP 80 from the pod subnet (ipBlock) except other.
  ASSERT_TRUE(set_policy(fmt::format(R"(apiVersion: kagami.io/v1alpha1
kind: KagamiNetworkPolicy
metadata: {{name: guard}}
spec:
  podSelector: {{matchLabels: {{role: db}}}}
  ingress:
    - action: deny
      from: [{{podSelector: {{matchLabels: {{role: other}}}}}}]
    - action: allow
      ports: [{{protocol: SCTP}}, {{protocol: ICMP, icmpType: 8}}]
    - action: allow
      from: [{{ipBlock: {{cidr: {}}}}}]
      ports: [{{protocol: TCP, port: 80}}]
)", net_.subnet())));
  matrix("guard", [](const std::string& from, const std::string& to, Proto p, uint16_t port) {
    if (to != "db") return true;
    if (from == "other") return false;
    return p == Proto::Sctp || p == Proto::Icmp || (p == Proto::Tcp && port == 80);
  });
}

// The XDP deny-list on `other`'s interface (what it sends arrives there):
// its address listed, nothing it sends gets through; the others are free.
TEST_F(PolicyLive, EdgeDenyListOnXdp) {
  auto info = rig_.pm().get(kProgramName);
  ASSERT_TRUE(info) << info.error().message;
  bool xdp = false;
  for (const auto& a : info->attachments) xdp = xdp || a.point.kind == core::AttachPoint::Kind::Xdp;
  ASSERT_TRUE(xdp) << "pol_xdp is not attached";
  ASSERT_TRUE(set_policy("apiVersion: kagami.io/v1alpha1\nkind: KagamiEdgePolicy\nmetadata: {name: flood}\nspec:\n  deny: [" +
                         pods_["other"].ip + "]\n"));
  // XDP keeps no state: answers from `other` are dropped too, so what needs
  // one (a TCP handshake, an echo reply) fails towards it as well, while
  // one-way UDP and SCTP still reach it.
  matrix(
      "edge deny",
      [](const std::string& from, const std::string& to, Proto p, uint16_t) {
        if (from == "other") return false;
        return to != "other" || p == Proto::Udp || p == Proto::Sctp;
      },
      [](const std::string&, const std::string& to) { return to != "other"; });
  ASSERT_TRUE(set_policy(""));
  EXPECT_TRUE(probe_icmp(pods_["other"], pods_["db"]));
}

TEST_F(PolicyLive, InvalidPolicyIsRejectedAndTheOldOneStays) {
  ASSERT_TRUE(set_policy(kHead + "metadata: {name: deny}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"));
  EXPECT_FALSE(probe_tcp(pods_["frontend"], pods_["db"], 80));
  auto bad = set_policy(kHead + "metadata: {name: deny}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  ingress: [{ports: [{port: 99999}]}]\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("p.yaml:6:"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("spec.ingress[0].ports[0].port: must be in 1..65535 (got 99999)"), std::string::npos)
      << bad.error().message;
  // Still the old policy: db isolated.
  EXPECT_FALSE(probe_tcp(pods_["frontend"], pods_["db"], 80));
  EXPECT_TRUE(probe_tcp(pods_["db"], pods_["frontend"], 80));
}

TEST_F(PolicyLive, HundredChangesUnderTrafficNeverJudgeAgainstThePolicyInForce) {
  const std::string allow = kHead + "metadata: {name: p}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
                                    "  ingress: [{ports: [{protocol: UDP, port: 7000}]}]\n";
  const std::string deny = kHead + "metadata: {name: p}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
                                   "  ingress: [{ports: [{protocol: UDP, port: 7001}]}]\n";
  ASSERT_TRUE(set_policy(allow));  // generation 1
  auto gen0 = rig_.pm().map_fd(kProgramName, POL_MAP_CFG);
  ASSERT_TRUE(gen0);
  pol_cfg c0{};
  const uint32_t zero = 0;
  ASSERT_TRUE(bpf::map_lookup(gen0->get(), &zero, &c0));
  const uint32_t first_gen = c0.generation;

  const Pod& db = pods_["db"];
  const Pod& fe = pods_["frontend"];
  Fd rx = socket_in(db.ns, AF_INET, SOCK_DGRAM, 0);
  auto la = addr4("0.0.0.0", 7000);
  ASSERT_EQ(bind(rx.get(), reinterpret_cast<sockaddr*>(&la), sizeof la), 0);
  int big = 8 << 20;
  setsockopt(rx.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);

  // Events of db's interface: one per packet (each datagram has a source
  // port of its own, so each is a new flow; drops are always sampled).
  const unsigned db_if = if_nametoindex(db.host_if.c_str());
  std::map<uint16_t, std::pair<uint32_t, uint8_t>> judged;  // sport -> (generation, verdict)
  size_t dup = 0;
  auto ev_fd = rig_.pm().map_fd(kProgramName, POL_MAP_EVENTS);
  ASSERT_TRUE(ev_fd);
  auto ring = bpf::RingBuffer::open({ev_fd->get()}, [&](size_t, std::span<const uint8_t> rec) {
    if (rec.size() < sizeof(pol_flow_event)) return;
    pol_flow_event e;
    std::memcpy(&e, rec.data(), sizeof e);
    if (e.ifindex != db_if || e.dir != POL_DIR_INGRESS || e.dport != 7000) return;
    if (!judged.emplace(e.sport, std::make_pair(e.generation, e.verdict)).second) ++dup;
  });
  ASSERT_TRUE(ring) << ring.error().message;

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::thread sender([&] {
    Fd tx = socket_in(fe.ns, AF_INET, SOCK_DGRAM, 0);
    auto ta = addr4(db.ip, 7000);
    for (int i = 0; !stop && i < 30000; ++i) {
      auto from = addr4("0.0.0.0", static_cast<uint16_t>(20000 + i));
      Fd s = socket_in(fe.ns, AF_INET, SOCK_DGRAM, 0);  // a source port of its own per datagram
      if (bind(s.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) continue;
      sendto(s.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&ta), sizeof ta);
      ++sent;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::thread changer([&] {
    for (int i = 0; i < 100; ++i) {
      auto r = set_policy(i % 2 ? allow : deny);
      EXPECT_TRUE(r) << r.error().message;
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
    stop = true;
  });
  // Drain the ring (it holds ~2700 records) and the receiver while the
  // traffic runs.
  std::set<uint16_t> arrived;
  auto drain_rx = [&] {
    char buf[8];
    sockaddr_in src{};
    socklen_t sl = sizeof src;
    while (readable(rx.get(), 0) && recvfrom(rx.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&src), &sl) > 0)
      arrived.insert(ntohs(src.sin_port));
  };
  while (!stop) {
    ASSERT_TRUE(ring->poll(5));
    drain_rx();
  }
  changer.join();
  sender.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(ring->consume());
  drain_rx();

  ASSERT_GT(sent.load(), 1000) << "too little traffic to mean anything";
  EXPECT_EQ(dup, 0u);
  EXPECT_EQ(judged.size(), static_cast<size_t>(sent.load())) << "every datagram judged once, with an event";
  std::set<uint32_t> gens;
  size_t wrong = 0, lost = 0, ghost = 0, allowed = 0;
  for (const auto& [sport, gv] : judged) {
    const auto [gen, verdict] = gv;
    gens.insert(gen);
    // Generation first_gen is `allow`; then deny, allow, ... (odd changes allow).
    const bool want_allow = (gen - first_gen) % 2 == 0;
    if ((verdict == POL_V_ALLOW) != want_allow) ++wrong;
    if (verdict == POL_V_ALLOW) {
      ++allowed;
      if (!arrived.count(sport)) ++lost;
    }
  }
  for (uint16_t p : arrived)
    if (!judged.count(p) || judged[p].second != POL_V_ALLOW) ++ghost;
  EXPECT_EQ(wrong, 0u) << "packets judged against their generation's policy";
  EXPECT_EQ(lost, 0u) << "allowed packets that never arrived";
  EXPECT_EQ(ghost, 0u) << "packets that arrived without an allow";
  EXPECT_GE(gens.size(), 90u) << "traffic must span the changes";
  EXPECT_GT(allowed, 0u);
  EXPECT_LT(allowed, judged.size());
}

}  // namespace
}  // namespace kagami::policy::test
