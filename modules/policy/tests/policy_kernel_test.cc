// The policy datapath under BPF_PROG_TEST_RUN: every decision path of
// policy.bpf.c with crafted packets (allow, default deny, deny rules, port
// ranges, conntrack replies, fragments, lying header lengths, IPv6, the
// slot switch), and the counters by rule and reason.
#include <gtest/gtest.h>

#include "bpf/map_view.h"
#include "modules/policy/abi.h"
#include "policy_rig.h"
#include "support/packet_builder.h"

namespace kagami::policy::test {
namespace {

using kagami::test::PacketBuilder;

// server 10.7.0.1 (app=server), client 10.7.0.2 (app=client), other 10.7.0.3.
std::vector<Workload> pods() {
  std::vector<Workload> wl(3);
  wl[0] = {"server", "default", {{"app", "server"}}, "a", "", {cidr("10.7.0.1"), cidr("fd07::1")}};
  wl[1] = {"client", "default", {{"app", "client"}}, "b", "", {cidr("10.7.0.2"), cidr("fd07::2")}};
  wl[2] = {"other", "default", {{"app", "other"}}, "c", "", {cidr("10.7.0.3"), cidr("fd07::3")}};
  return wl;
}

std::vector<Policy> parse(const std::string& y) {
  auto p = parse_policies(y, "test.yaml");
  EXPECT_TRUE(p) << p.error().message;
  return p ? *p : std::vector<Policy>{};
}

const char* kServerTcp80 = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-web}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 5000, endPort: 5010}]
)";

std::vector<uint8_t> tcp4(const char* s, const char* d, uint16_t sp, uint16_t dp, uint8_t flags = 0x02) {
  return PacketBuilder().eth().ipv4(s, d).tcp(sp, dp, flags).build();
}
std::vector<uint8_t> udp4(const char* s, const char* d, uint16_t sp, uint16_t dp) {
  return PacketBuilder().eth().ipv4(s, d).udp(sp, dp).payload(8).build();
}

class PolicyKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    auto r = rig_.open();
    ASSERT_TRUE(r) << r.error().message;
  }
  uint64_t count(const std::string& rule, uint8_t reason, uint8_t verdict) {
    auto fd = rig_.pm().map_fd(kProgramName, POL_MAP_STATS);
    EXPECT_TRUE(fd);
    auto v = bpf::MapView<pol_stat_key, pol_stat_val>::open(fd->get(), POL_MAP_STATS);
    EXPECT_TRUE(v);
    uint64_t n = 0;
    (void)v->for_each_summed([&](const pol_stat_key& k, const pol_stat_val& s) {
      if (k.reason == reason && k.verdict == verdict && (rule.empty() ? k.rule == 0 : rig_.ids().name(k.rule) == rule))
        n += s.packets;
    });
    return n;
  }
  PolicyRig rig_;
};

TEST_F(PolicyKernel, NoPolicyLoadedAllowsEverything) {
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.3", "10.7.0.1", 1000, 22), true), kPass);
  EXPECT_EQ(count("", POL_R_NO_POLICY, POL_V_ALLOW), 1u);
}

TEST_F(PolicyKernel, AllowRuleDefaultDenyAndPorts) {
  auto a = rig_.apply(pods(), parse(kServerTcp80));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->generation, 1u);
  // To the server (TC egress of its interface = its ingress policy).
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 40000, 80), true), kPass);
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 40000, 81), true), kDrop);   // port
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.3", "10.7.0.1", 40000, 80), true), kDrop);   // peer
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 40000, 80), true), kDrop);   // protocol
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 40000, 4999), true), kDrop);
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 40000, 5000), true), kPass);  // endPort range
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 40000, 5010), true), kPass);
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 40000, 5011), true), kDrop);
  EXPECT_EQ(rig_.judge(udp4("8.8.8.8", "10.7.0.1", 53, 5005), true), kDrop);      // world
  // The client is not selected: anything to it passes; egress is not isolated.
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.3", "10.7.0.2", 40000, 9), true), kPass);
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.1", "10.7.0.3", 40000, 9), false), kPass);
  EXPECT_EQ(count("default/server-web:ingress[0]", POL_R_RULE, POL_V_ALLOW), 3u);
  EXPECT_EQ(count("", POL_R_DEFAULT_DENY, POL_V_DROP), 6u);
}

TEST_F(PolicyKernel, RepliesOfAllowedFlowsPassOthersDoNot) {
  ASSERT_TRUE(rig_.apply(pods(), parse(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress, Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: TCP, port: 443}]
)")));
  // The server calls the client: allowed by its egress policy (TC ingress).
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.1", "10.7.0.2", 41000, 443), false), kPass);
  // The client's answer comes back to the server: a reply, despite the
  // ingress default deny.
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 443, 41000, 0x12), true), kPass);
  EXPECT_EQ(count("default/lockdown:egress[0]", POL_R_REPLY, POL_V_ALLOW), 1u);
  // Not a reply: other ports, or the client opening a connection of its own.
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 443, 41001, 0x12), true), kDrop);
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 41000, 443), true), kDrop);
  // ICMP echo: the request is judged (no ICMP allowed), so no reply entry either.
  auto ping = PacketBuilder().eth().ipv4("10.7.0.1", "10.7.0.2", {.proto = 1}).bytes({8, 0, 0, 0, 0, 7, 0, 1}).build();
  EXPECT_EQ(rig_.judge(ping, false), kDrop);
}

TEST_F(PolicyKernel, DenyRulesWinAndIcmpTypes) {
  ASSERT_TRUE(rig_.apply(pods(), parse(R"(apiVersion: kagami.io/v1alpha1
kind: KagamiNetworkPolicy
metadata: {name: guard}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - action: deny
      from: [{podSelector: {matchLabels: {app: other}}}]
    - action: deny
      ports: [{protocol: SCTP, port: 9}]
    - action: allow
      ports: [{protocol: ICMP, icmpType: 8}, {protocol: SCTP}, {protocol: TCP}]
)")));
  auto echo = [](const char* s, const char* d, uint8_t type) {
    return PacketBuilder().eth().ipv4(s, d, {.proto = 1}).bytes({type, 0, 0, 0, 0, 9, 0, 1}).build();
  };
  EXPECT_EQ(rig_.judge(echo("10.7.0.2", "10.7.0.1", 8), true), kPass);
  EXPECT_EQ(rig_.judge(echo("10.7.0.2", "10.7.0.1", 13), true), kDrop);  // timestamp: not allowed
  EXPECT_EQ(rig_.judge(echo("10.7.0.3", "10.7.0.1", 8), true), kDrop);   // denied peer
  EXPECT_EQ(rig_.judge(tcp4("10.7.0.3", "10.7.0.1", 1, 80), true), kDrop);
  auto sctp = [](uint16_t dport) {
    return PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1").sctp(5000, dport, 1, {kagami::test::sctp_sack(1)}).build();
  };
  EXPECT_EQ(rig_.judge(sctp(38412), true), kPass);
  EXPECT_EQ(rig_.judge(sctp(9), true), kDrop);  // deny beats allow
  EXPECT_EQ(count("default/guard:ingress[0]", POL_R_DENY_RULE, POL_V_DROP), 2u);
  EXPECT_EQ(count("default/guard:ingress[1]", POL_R_DENY_RULE, POL_V_DROP), 1u);
  // UDP is in no allow rule.
  EXPECT_EQ(rig_.judge(udp4("10.7.0.2", "10.7.0.1", 1, 53), true), kDrop);
}

TEST_F(PolicyKernel, FragmentsAndLyingHeadersAreDenied) {
  ASSERT_TRUE(rig_.apply(pods(), parse(kServerTcp80)));
  // A first fragment carrying an allowed port is still a fragment: without
  // reassembly the later ones cannot be judged, so none passes.
  auto first = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.id = 7, .more_fragments = true}).tcp(1, 80).payload(16).build();
  auto later = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.proto = 6, .id = 7, .frag_offset = 5}).payload(16).build();
  EXPECT_EQ(rig_.judge(first, true), kDrop);
  EXPECT_EQ(rig_.judge(later, true), kDrop);
  EXPECT_EQ(count("", POL_R_FRAGMENT, POL_V_DROP), 2u);
  // To a workload no policy selects, fragments pass.
  auto to_client = PacketBuilder().eth().ipv4("10.7.0.3", "10.7.0.2", {.proto = 17, .id = 8, .frag_offset = 5}).payload(16).build();
  EXPECT_EQ(rig_.judge(to_client, true), kPass);
  // Lies: IHL < 5, total length past the frame, TCP data offset < 5, cut UDP.
  auto ihl = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.ihl = 4}).tcp(1, 80).build();
  auto tot = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.total_length = 1400}).tcp(1, 80).build();
  auto doff = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1").tcp(1, 80, 0x02, 3).build();
  auto cut = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.proto = 17}).bytes({0x13, 0x88}).build();
  for (const auto* p : {&ihl, &tot, &doff, &cut}) EXPECT_EQ(rig_.judge(*p, true), kDrop);
  EXPECT_EQ(count("", POL_R_MALFORMED, POL_V_DROP), 4u);
  // ARP passes.
  auto arp = PacketBuilder().eth(0x0806).payload(28).build();
  EXPECT_EQ(rig_.judge(arp, true), kPass);
}

TEST_F(PolicyKernel, Ipv6AndNeighbourDiscovery) {
  ASSERT_TRUE(rig_.apply(pods(), parse(kServerTcp80)));
  auto t6 = [](const char* s, uint16_t dport) { return PacketBuilder().eth().ipv6(s, "fd07::1").tcp(1234, dport).build(); };
  EXPECT_EQ(rig_.judge(t6("fd07::2", 80), true), kPass);
  EXPECT_EQ(rig_.judge(t6("fd07::3", 80), true), kDrop);
  EXPECT_EQ(rig_.judge(t6("fd07::2", 22), true), kDrop);
  // Through extension headers (hop-by-hop, destination options).
  auto ext = PacketBuilder().eth().ipv6("fd07::2", "fd07::1").ipv6_ext(0).ipv6_ext(60, 1).tcp(1234, 80).build();
  EXPECT_EQ(rig_.judge(ext, true), kPass);
  auto frag6 = PacketBuilder().eth().ipv6("fd07::2", "fd07::1").ipv6_frag(0, true, 5).tcp(1234, 80).build();
  EXPECT_EQ(rig_.judge(frag6, true), kDrop);
  // Neighbour solicitation passes even to an isolated pod.
  auto ns = PacketBuilder().eth().ipv6("fd07::2", "fd07::1").bytes({135, 0, 0, 0, 0, 0, 0, 0}).build();
  auto ns_fixed = ns;
  ns_fixed[20] = 58;  // next header: ICMPv6
  EXPECT_EQ(rig_.judge(ns_fixed, true), kPass);
}

TEST_F(PolicyKernel, SlotSwitchAppliesWholePolicies) {
  auto p1 = parse(kServerTcp80);
  auto p2 = parse(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-ssh}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: other}}}]
      ports: [{protocol: TCP, port: 22}]
)");
  for (int gen = 1; gen <= 6; ++gen) {
    const bool first = gen % 2;
    auto a = rig_.apply(pods(), first ? p1 : p2);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->generation, uint32_t(gen));
    EXPECT_EQ(a->slot, uint32_t((gen - 1) % 2));
    EXPECT_EQ(rig_.judge(tcp4("10.7.0.2", "10.7.0.1", 40000 + gen, 80), true), first ? kPass : kDrop);
    EXPECT_EQ(rig_.judge(tcp4("10.7.0.3", "10.7.0.1", 40000 + gen, 22), true), first ? kDrop : kPass);
  }
  // The inactive slot holds exactly the previous policy; nothing piles up.
  auto fd = rig_.pm().map_fd(kProgramName, POL_MAP_ALLOW);
  ASSERT_TRUE(fd);
  size_t n = 0;
  ASSERT_TRUE(bpf::map_for_each(fd->get(), sizeof(pol_rule_key), sizeof(pol_rule_val), false,
                                [&](const uint8_t*, const uint8_t*) { ++n; }));
  // In force: TCP 22 (1 entry). Inactive: TCP 80 + UDP 5000..5010 as the
  // prefixes 5000/13, 5008/15, 5010/16 (4 entries).
  EXPECT_EQ(n, 5u);
}

TEST_F(PolicyKernel, EdgeDenyListDropsListedSourcesOnXdp) {
  auto ps = parse(R"(apiVersion: kagami.io/v1alpha1
kind: KagamiEdgePolicy
metadata: {name: flood}
spec:
  deny: [198.51.100.0/24, 2001:db8:bad::/48, 203.0.113.7]
)");
  auto np = parse(kServerTcp80);
  ps.insert(ps.end(), np.begin(), np.end());
  auto a = rig_.apply(pods(), ps);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->edge, 3u);
  auto from = [](const char* s, const char* d) { return PacketBuilder().eth().ipv4(s, d).udp(1, 2).build(); };
  EXPECT_EQ(rig_.judge_xdp(from("198.51.100.77", "10.7.0.1")), 1);  // XDP_DROP
  EXPECT_EQ(rig_.judge_xdp(from("203.0.113.7", "10.7.0.2")), 1);
  EXPECT_EQ(rig_.judge_xdp(from("203.0.113.8", "10.7.0.2")), 2);   // next in the chain / XDP_PASS
  EXPECT_EQ(rig_.judge_xdp(PacketBuilder().eth().ipv6("2001:db8:bad:1::1", "fd07::1").udp(1, 2).build()), 1);
  EXPECT_EQ(rig_.judge_xdp(PacketBuilder().eth().ipv6("2001:db8:bae::1", "fd07::1").udp(1, 2).build()), 2);
  EXPECT_EQ(rig_.judge_xdp(PacketBuilder().eth(0x0806).payload(28).build()), 2);
  EXPECT_EQ(count("default/flood:deny[0]", POL_R_EDGE_DENY, POL_V_DROP), 1u);
  EXPECT_EQ(count("default/flood:deny[1]", POL_R_EDGE_DENY, POL_V_DROP), 1u);
  EXPECT_EQ(count("default/flood:deny[2]", POL_R_EDGE_DENY, POL_V_DROP), 1u);
  // The list switches with the rest of the policy.
  ASSERT_TRUE(rig_.apply(pods(), np));
  EXPECT_EQ(rig_.judge_xdp(from("198.51.100.77", "10.7.0.1")), 2);
}

}  // namespace
}  // namespace kagami::policy::test
