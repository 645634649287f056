// GTP-U-aware rules (docs/policy.md, "GTP-U-aware rules") under
// BPF_PROG_TEST_RUN: the inner UE 5-tuple, the TEID and the QFI of
// tunnelled traffic (outer UDP 2152), allow and deny, both directions,
// IPv4 and IPv6 inside and outside; and hostile tunnels (lying lengths, an
// extension chain too long to walk, inner fragments, inner non-IP) that
// must never pass a deny: the documented default (deny) applies and each is
// counted by reason.
#include <gtest/gtest.h>

#include "bpf/map_view.h"
#include "modules/policy/abi.h"
#include "policy_rig.h"
#include "support/packet_builder.h"

namespace kagami::policy::test {
namespace {

using kagami::test::GtpExt;
using kagami::test::GtpOpts;
using kagami::test::kGtpEchoRequest;
using kagami::test::kGtpTpdu;
using kagami::test::PacketBuilder;
using kagami::test::pdu_session_container;

// upf 10.7.0.1 / fd07::1 (app=upf), gnb 10.7.0.2 / fd07::2 (app=gnb).
std::vector<Workload> pods() {
  std::vector<Workload> wl(2);
  wl[0] = {"upf", "default", {{"app", "upf"}}, "a", "", {cidr("10.7.0.1"), cidr("fd07::1")}};
  wl[1] = {"gnb", "default", {{"app", "gnb"}}, "b", "", {cidr("10.7.0.2"), cidr("fd07::2")}};
  return wl;
}

std::vector<Policy> parse(const std::string& y) {
  auto p = parse_policies(y, "test.yaml");
  EXPECT_TRUE(p) << p.error().message;
  return p ? *p : std::vector<Policy>{};
}

// N3 at the UPF: uplink (to the UPF, its ingress) from UEs of 10.45.0.0/16
// and 2001:db8:45::/48 may reach TCP 80, UDP 53 and ICMP echo; nothing may
// reach 198.51.100.0/24; TEID 0x66 carrying QFI 5 is refused whatever it
// holds. Downlink (its egress): nothing from 203.0.113.0/24 reaches a UE.
const char* kN3 = R"(apiVersion: kagami.io/v1alpha1
kind: KagamiNetworkPolicy
metadata: {name: n3}
spec:
  podSelector: {matchLabels: {app: upf}}
  ingress:
    - action: allow
      gtpu:
        src: 10.45.0.0/16
        ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 53}, {protocol: ICMP, icmpType: 8}]
    - action: allow
      gtpu: {src: "2001:db8:45::/48"}
    - action: deny
      gtpu: {dst: 198.51.100.0/24}
    - action: deny
      gtpu: {teid: 0x66, qfi: 5}
  egress:
    - action: deny
      gtpu: {src: 203.0.113.0/24}
)";

struct Inner {
  std::string src = "10.45.0.2", dst = "8.8.8.8";
  uint8_t proto = 6;
  uint16_t dport = 80;
  uint32_t teid = 1;
  std::optional<uint8_t> qfi = 9;
  bool outer6 = false;
  bool uplink = true;  // gnb -> upf
};

PacketBuilder outer(const Inner& in) {
  PacketBuilder b;
  b.eth();
  const bool up = in.uplink;
  if (in.outer6) b.ipv6(up ? "fd07::2" : "fd07::1", up ? "fd07::1" : "fd07::2");
  else b.ipv4(up ? "10.7.0.2" : "10.7.0.1", up ? "10.7.0.1" : "10.7.0.2");
  b.udp(2152, 2152);
  GtpOpts o;
  if (in.qfi) o.ext = {pdu_session_container(up ? 1 : 0, *in.qfi)};
  b.gtpu(kGtpTpdu, in.teid, o);
  return b;
}

std::vector<uint8_t> tunnel(const Inner& in) {
  PacketBuilder b = outer(in);
  const bool v6 = in.src.find(':') != std::string::npos;
  if (v6) b.ipv6(in.src, in.dst);
  else b.ipv4(in.src, in.dst, {.proto = in.proto});
  if (in.proto == 6) b.tcp(40000, in.dport, 0x02);
  else if (in.proto == 17) b.udp(40000, in.dport).payload(8);
  else b.bytes({static_cast<uint8_t>(in.dport), 0, 0, 0, 0, 1, 0, 1});  // ICMP (IPv4 inner only here)
  return b.build();
}

class PolicyGtpu : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    auto r = rig_.open();
    ASSERT_TRUE(r) << r.error().message;
    auto a = rig_.apply(pods(), parse(kN3));
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->gtp, 7u);  // ingress: 3 inner ports + 1 + 1 + 1; egress: 1
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
  int up(const Inner& in) { return rig_.judge(tunnel(in), true); }
  PolicyRig rig_;
};

TEST_F(PolicyGtpu, InnerFiveTupleTeidAndQfiMatrix) {
  struct Case {
    const char* what;
    Inner in;
    int want;
  };
  const Case cases[] = {
      {"allowed UE, TCP 80", {}, kPass},
      {"allowed UE, TCP 81", {.dport = 81}, kDrop},
      {"allowed UE, UDP 53", {.proto = 17, .dport = 53}, kPass},
      {"allowed UE, UDP 80", {.proto = 17, .dport = 80}, kDrop},
      {"allowed UE, ICMP echo", {.proto = 1, .dport = 8}, kPass},
      {"allowed UE, ICMP timestamp", {.proto = 1, .dport = 13}, kDrop},
      {"other UE range", {.src = "10.46.0.2"}, kDrop},
      {"denied destination", {.dst = "198.51.100.7"}, kDrop},
      {"TEID 0x66 QFI 5", {.teid = 0x66, .qfi = 5}, kDrop},
      {"TEID 0x66 QFI 6", {.teid = 0x66, .qfi = 6}, kPass},
      {"TEID 0x67 QFI 5", {.teid = 0x67, .qfi = 5}, kPass},
      {"TEID 0x66 without a PDU Session Container", {.teid = 0x66, .qfi = std::nullopt}, kPass},
      {"inner IPv6 allowed UE", {.src = "2001:db8:45::2", .dst = "2001:db8:1::1", .proto = 17, .dport = 999}, kPass},
      {"inner IPv6 other UE", {.src = "2001:db8:46::2", .dst = "2001:db8:1::1"}, kDrop},
      {"outer IPv6, inner IPv4 allowed", {.outer6 = true}, kPass},
      {"outer IPv6, inner IPv4 denied dst", {.dst = "198.51.100.9", .outer6 = true}, kDrop},
      {"outer IPv6, TEID 0x66 QFI 5", {.teid = 0x66, .qfi = 5, .outer6 = true}, kDrop},
  };
  for (const auto& c : cases) EXPECT_EQ(up(c.in), c.want) << c.what;
  // Downlink (what the UPF sends: its egress): only the deny applies.
  EXPECT_EQ(rig_.judge(tunnel({.src = "203.0.113.5", .dst = "10.45.0.2", .uplink = false}), false), kDrop);
  EXPECT_EQ(rig_.judge(tunnel({.src = "192.0.2.5", .dst = "10.45.0.2", .uplink = false}), false), kPass);
  EXPECT_EQ(rig_.judge(tunnel({.src = "203.0.113.5", .dst = "10.45.0.2", .outer6 = true, .uplink = false}), false), kDrop);

  // ingress[0]: TCP 80, UDP 53, echo, the three TEID/QFI cases that pass, outer IPv6.
  EXPECT_EQ(count("default/n3:ingress[0]", POL_R_GTPU_RULE, POL_V_ALLOW), 7u);
  EXPECT_EQ(count("default/n3:ingress[1]", POL_R_GTPU_RULE, POL_V_ALLOW), 1u);
  EXPECT_EQ(count("default/n3:ingress[2]", POL_R_GTPU_DENY, POL_V_DROP), 2u);
  EXPECT_EQ(count("default/n3:ingress[3]", POL_R_GTPU_DENY, POL_V_DROP), 2u);
  EXPECT_EQ(count("default/n3:egress[0]", POL_R_GTPU_DENY, POL_V_DROP), 2u);
  EXPECT_EQ(count("", POL_R_GTPU_DEFAULT_DENY, POL_V_DROP), 5u);
}

TEST_F(PolicyGtpu, DenyWinsOverAllowAndOverConntrack) {
  // Allowed by ingress[0] (UE, TCP 80) and denied by ingress[3] (TEID/QFI):
  // the deny wins although it is listed later.
  EXPECT_EQ(up({.teid = 0x66, .qfi = 5}), kDrop);
  // The UPF's downlink creates the outer flow's conntrack entry; the gNB's
  // next uplink packet is a "reply" of it for the outer policy, but its
  // inner flow is still judged.
  EXPECT_EQ(rig_.judge(tunnel({.src = "192.0.2.5", .dst = "10.45.0.2", .uplink = false}), false), kPass);
  EXPECT_EQ(up({.dst = "198.51.100.7"}), kDrop);
  EXPECT_EQ(up({}), kPass);
}

TEST_F(PolicyGtpu, NonTpduMessagesAndPlainTrafficAreJudgedByTheOuterPolicyOnly) {
  // Echo request: no UE flow inside; the upf is not isolated for the outer
  // packet (its policy has only GTP-U rules).
  auto echo = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpEchoRequest, 0, {.seq = 1}).build();
  EXPECT_EQ(rig_.judge(echo, true), kPass);
  EXPECT_EQ(rig_.judge(PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1").tcp(1, 22, 0x02).build(), true), kPass);
  EXPECT_EQ(count("", POL_R_NOT_ISOLATED, POL_V_ALLOW), 2u);
}

TEST_F(PolicyGtpu, OuterPolicyStillApplies) {
  // Isolate the upf's outer ingress to UDP 2152 from the gnb: tunnelled
  // packets need both layers.
  auto ps = parse(kN3);
  auto outer_pol = parse(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: n3-outer}
spec:
  podSelector: {matchLabels: {app: upf}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: gnb}}}]
      ports: [{protocol: UDP, port: 2152}]
)");
  ps.insert(ps.end(), outer_pol.begin(), outer_pol.end());
  ASSERT_TRUE(rig_.apply(pods(), ps));
  EXPECT_EQ(up({}), kPass);
  EXPECT_EQ(up({.dport = 81}), kDrop);
  // From an address that is not the gnb: the outer policy refuses it even
  // though the inner flow is allowed.
  auto p = tunnel({});
  p[14 + 12] = 10, p[14 + 13] = 7, p[14 + 14] = 0, p[14 + 15] = 9;  // outer source 10.7.0.9
  EXPECT_EQ(rig_.judge(p, true), kDrop);
  EXPECT_EQ(count("", POL_R_DEFAULT_DENY, POL_V_DROP), 1u);
}

TEST_F(PolicyGtpu, HostileTunnelsNeverPassADeny) {
  // Each of these carries a flow the policy denies (to 198.51.100.7), made
  // unreadable in some way: the tunnel layer cannot decide, so it drops.
  Inner bad{.dst = "198.51.100.7"};
  auto base = tunnel(bad);
  const size_t udp = 14 + 20, gtp = udp + 8;

  // GTP-U length field: one too long, one too short.
  auto longer = base;
  longer[gtp + 3]++;
  auto shorter = base;
  shorter[gtp + 3]--;
  // UDP length that disagrees with IP's.
  auto udp_lie = base;
  udp_lie[udp + 5] -= 4;
  // An extension chain longer than the walk (9 > GTPU_MAX_EXT), and one whose
  // extension length is 0.
  std::vector<GtpExt> nine(9, GtpExt{0x40, {0, 0}, {}});
  PacketBuilder longchain;
  longchain.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1, {.ext = nine}).ipv4("10.45.0.2", "198.51.100.7").tcp(1, 80, 0x02);
  PacketBuilder zero;
  zero.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152)
      .gtpu(kGtpTpdu, 1, {.ext = {GtpExt{0x85, {0x10, 9}, uint8_t{0}}}})
      .ipv4("10.45.0.2", "198.51.100.7").tcp(1, 80, 0x02);
  // The inner IPv4 total length runs past the tunnel; inner IHL < 5.
  PacketBuilder tot;
  tot.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1)
      .ipv4("10.45.0.2", "198.51.100.7", {.total_length = 1400}).tcp(1, 80, 0x02);
  PacketBuilder ihl;
  ihl.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1)
      .ipv4("10.45.0.2", "198.51.100.7", {.ihl = 4}).tcp(1, 80, 0x02);
  // A cut inner TCP header; an inner packet that is not IP (version 5).
  PacketBuilder cut;
  cut.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1)
      .ipv4("10.45.0.2", "198.51.100.7", {.proto = 6}).bytes({0, 1, 0, 80});
  auto notip = base;
  notip[gtp + 16] = 0x55;  // the inner header: after GTP 8 + optional part 4 + PDU Session Container 4
  // Truncated GTP-U header (4 bytes of it).
  auto trunc = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).bytes({0x30, 0xff, 0, 0}).build();
  // GTP version 2 on the GTP-U port.
  auto v2 = base;
  v2[gtp] = (v2[gtp] & 0x1f) | (2 << 5);

  struct Case {
    const char* what;
    std::vector<uint8_t> pkt;
  } cases[] = {
      {"GTP length +1", longer},        {"GTP length -1", shorter},        {"UDP length lie", udp_lie},
      {"9 extensions", longchain.build()}, {"extension length 0", zero.build()}, {"inner total length", tot.build()},
      {"inner IHL 4", ihl.build()},     {"inner TCP cut", cut.build()},    {"inner not IP", notip},
      {"GTP header cut", trunc},        {"GTP version 2", v2},
  };
  for (const auto& c : cases) EXPECT_EQ(rig_.judge(c.pkt, true), kDrop) << c.what;
  EXPECT_EQ(count("", POL_R_GTPU_MALFORMED, POL_V_DROP), 11u);

  // Inner fragments: no inner ports, so no decision; outer fragments of a
  // tunnel hide the inner flow altogether.
  PacketBuilder f1, f2;
  f1.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1)
      .ipv4("10.45.0.2", "8.8.8.8", {.id = 3, .more_fragments = true}).tcp(1, 80, 0x02).payload(16);
  f2.eth().ipv4("10.7.0.2", "10.7.0.1").udp(2152, 2152).gtpu(kGtpTpdu, 1)
      .ipv4("10.45.0.2", "8.8.8.8", {.proto = 6, .id = 3, .frag_offset = 5}).payload(16);
  EXPECT_EQ(rig_.judge(f1.build(), true), kDrop);
  EXPECT_EQ(rig_.judge(f2.build(), true), kDrop);
  EXPECT_EQ(count("", POL_R_GTPU_FRAGMENT, POL_V_DROP), 2u);
  auto of = PacketBuilder().eth().ipv4("10.7.0.2", "10.7.0.1", {.proto = 17, .id = 9, .frag_offset = 20}).payload(64).build();
  EXPECT_EQ(rig_.judge(of, true), kDrop);
  EXPECT_EQ(count("", POL_R_FRAGMENT, POL_V_DROP), 1u);
  // The well-formed version of the same packet is denied by its rule, and
  // its allowed sibling passes: the drops above are the parser's.
  EXPECT_EQ(rig_.judge(base, true), kDrop);
  EXPECT_EQ(count("default/n3:ingress[2]", POL_R_GTPU_DENY, POL_V_DROP), 1u);
  EXPECT_EQ(up({}), kPass);
}

TEST_F(PolicyGtpu, SlotsSwitchGtpRulesWithTheRest) {
  EXPECT_EQ(up({.dst = "198.51.100.7"}), kDrop);
  // A policy without GTP-U rules: the tunnel is opaque again.
  ASSERT_TRUE(rig_.apply(pods(), parse(R"(apiVersion: kagami.io/v1alpha1
kind: KagamiNetworkPolicy
metadata: {name: other}
spec:
  podSelector: {matchLabels: {app: upf}}
  ingress:
    - action: deny
      from: [{ipBlock: {cidr: 192.0.2.0/24}}]
)")));
  EXPECT_EQ(up({.dst = "198.51.100.7"}), kPass);
  EXPECT_EQ(up({.dport = 81}), kPass);
  auto a = rig_.apply(pods(), parse(kN3));
  ASSERT_TRUE(a);
  EXPECT_EQ(up({.dst = "198.51.100.7"}), kDrop);
  EXPECT_EQ(up({.dport = 81}), kDrop);
}

}  // namespace
}  // namespace kagami::policy::test
