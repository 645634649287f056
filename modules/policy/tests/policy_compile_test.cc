// The compiler: identities of prefixes (ipBlock with except, selectors),
// isolation flags, rule entries and port ranges as prefixes.
#include <gtest/gtest.h>

#include <linux/types.h>

#include <random>

#include "modules/policy/abi.h"
#include "modules/policy/compile.h"

namespace kagami::policy {
namespace {

Cidr C(const char* s) {
  auto c = parse_cidr(s);
  EXPECT_TRUE(c) << s;
  return c ? *c : Cidr{};
}

// What the LPM trie answers for an address: the identity of the longest prefix.
uint32_t lookup(const Compiled& c, const char* addr) {
  const Cidr a = C(addr);
  int best = -1;
  uint32_t id = POL_ID_WORLD;
  for (const auto& [p, i] : c.prefixes)
    if (p.contains(a) && p.len > best) best = p.len, id = i;
  return id;
}

bool allowed(const Compiled& c, uint8_t dir, uint32_t local, uint32_t peer, uint8_t proto, uint16_t port, bool deny = false) {
  for (const auto& r : c.rules) {
    if (r.deny != deny || r.dir != dir || r.local != local) continue;
    if (r.peer != peer && r.peer != POL_ID_ANY) continue;
    if (r.proto != POL_PROTO_ANY && r.proto != proto) continue;
    if (r.proto != POL_PROTO_ANY && r.port_bits && (port >> (16 - r.port_bits)) != (r.port >> (16 - r.port_bits))) continue;
    return true;
  }
  return false;
}

TEST(PolicyCompile, PortPrefixesCoverRangesExactly) {
  std::mt19937 rng(12);
  for (int i = 0; i < 300; ++i) {
    uint16_t a = static_cast<uint16_t>(rng()), b = static_cast<uint16_t>(rng());
    if (i == 0) a = 0, b = 65535;
    if (i == 1) a = b = 80;
    if (a > b) std::swap(a, b);
    auto ps = port_prefixes(a, b);
    EXPECT_LE(ps.size(), 30u);
    for (uint32_t p = 0; p < 65536; p += (i < 5 ? 1 : 7)) {
      int hits = 0;
      for (auto [v, bits] : ps)
        if (bits == 0 || (p >> (16 - bits)) == (uint32_t(v) >> (16 - bits))) ++hits;
      EXPECT_EQ(hits, (p >= a && p <= b) ? 1 : 0) << a << ".." << b << " port " << p;
    }
  }
}

TEST(PolicyCompile, DocsExampleIdentitiesAndRules) {
  std::vector<Workload> wl(4);
  wl[0] = {"db", "default", {{"role", "db"}}, "a", "", {C("10.9.0.1")}};
  wl[1] = {"frontend", "default", {{"role", "frontend"}}, "b", "", {C("10.9.0.2")}};
  wl[2] = {"other", "default", {{"role", "x"}}, "c", "", {C("10.9.0.3")}};
  wl[3] = {"proj", "myns", {{"role", "x"}}, "d", "", {C("10.9.0.4")}};
  Namespaces nss = {{"myns", {{"project", "myproject"}}}};
  Policy p;
  p.kind = "NetworkPolicy";
  p.name = "t";
  p.pod_selector.match_labels = {{"role", "db"}};
  p.isolates_ingress = p.isolates_egress = true;
  Rule in;
  in.any_peer = false;
  Peer ipb;
  ipb.ip_block = IpBlock{C("172.17.0.0/16"), {C("172.17.1.0/24")}};
  Peer nsp;
  nsp.ns = Selector{{{"project", "myproject"}}, {}};
  Peer pod;
  pod.pod = Selector{{{"role", "frontend"}}, {}};
  in.peers = {ipb, nsp, pod};
  in.any_port = false;
  in.ports = {PortRange{6, false, 6379, 6379}};
  in.name = "default/t:ingress[0]";
  p.ingress = {in};
  Rule out;
  out.any_peer = false;
  Peer eg;
  eg.ip_block = IpBlock{C("10.0.0.0/24"), {}};
  out.peers = {eg};
  out.any_port = false;
  out.ports = {PortRange{6, false, 5978, 5978}};
  out.name = "default/t:egress[0]";
  p.egress = {out};
  RuleIds ids;
  auto c = compile(wl, {p}, nss, ids);
  ASSERT_TRUE(c) << c.error().message;
  const uint32_t db = lookup(*c, "10.9.0.1");
  ASSERT_NE(db, POL_ID_WORLD);
  EXPECT_EQ(c->local_flags.at(db), uint32_t(POL_LOCAL_ISO_INGRESS | POL_LOCAL_ISO_EGRESS));
  EXPECT_EQ(c->local_flags.count(lookup(*c, "10.9.0.2")), 0u);  // frontend: not selected
  const uint8_t I = POL_DIR_INGRESS, E = POL_DIR_EGRESS;
  EXPECT_TRUE(allowed(*c, I, db, lookup(*c, "10.9.0.2"), 6, 6379));    // frontend pod
  EXPECT_FALSE(allowed(*c, I, db, lookup(*c, "10.9.0.2"), 6, 6380));   // wrong port
  EXPECT_FALSE(allowed(*c, I, db, lookup(*c, "10.9.0.2"), 17, 6379));  // wrong protocol
  EXPECT_FALSE(allowed(*c, I, db, lookup(*c, "10.9.0.3"), 6, 6379));   // role=x in default
  EXPECT_TRUE(allowed(*c, I, db, lookup(*c, "10.9.0.4"), 6, 6379));    // any pod of myproject
  EXPECT_TRUE(allowed(*c, I, db, lookup(*c, "172.17.0.9"), 6, 6379));  // in the block
  EXPECT_FALSE(allowed(*c, I, db, lookup(*c, "172.17.1.9"), 6, 6379)); // in except
  EXPECT_TRUE(allowed(*c, I, db, lookup(*c, "172.17.2.9"), 6, 6379));
  EXPECT_FALSE(allowed(*c, I, db, lookup(*c, "8.8.8.8"), 6, 6379));    // world
  EXPECT_TRUE(allowed(*c, E, db, lookup(*c, "10.0.0.77"), 6, 5978));
  EXPECT_FALSE(allowed(*c, E, db, lookup(*c, "10.0.1.77"), 6, 5978));
  EXPECT_EQ(c->identity_names.at(db), "default/db");
}

TEST(PolicyCompile, DenyRulesFlagButDoNotIsolateAndLimitsAreErrors) {
  std::vector<Workload> wl(1);
  wl[0] = {"upf", "default", {{"app", "upf"}}, "a", "", {C("10.9.0.1"), C("fd00::1")}};
  Policy p;
  p.kind = "KagamiNetworkPolicy";
  p.name = "d";
  Rule r;
  r.deny = true;
  r.any_peer = false;
  Peer b;
  b.ip_block = IpBlock{C("fd00:bad::/32"), {}};
  r.peers = {b};
  r.name = "default/d:ingress[0]";
  p.ingress = {r};
  RuleIds ids;
  auto c = compile(wl, {p}, {}, ids);
  ASSERT_TRUE(c) << c.error().message;
  const uint32_t u = lookup(*c, "10.9.0.1");
  EXPECT_EQ(u, lookup(*c, "fd00::1"));  // one identity for both families of one workload
  EXPECT_EQ(c->local_flags.at(u), uint32_t(POL_LOCAL_DENY_INGRESS));
  EXPECT_TRUE(allowed(*c, POL_DIR_INGRESS, u, lookup(*c, "fd00:bad::7"), 17, 53, true));
  CompileLimits small;
  small.max_prefixes = 1;
  auto lim = compile(wl, {p}, {}, ids, small);
  ASSERT_FALSE(lim);
  EXPECT_NE(lim.error().message.find("IPv6 prefixes"), std::string::npos) << lim.error().message;
  wl.push_back({"dup", "default", {}, "b", "", {C("10.9.0.1")}});
  auto dup = compile(wl, {p}, {}, ids);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("10.9.0.1/32 belongs to both"), std::string::npos);
}

TEST(PolicyCompile, ManyCidrsOfOneRuleAreOneIdentityAndOneEntry) {
  std::vector<Workload> wl(1);
  wl[0] = {"s", "default", {{"app", "s"}}, "a", "", {C("10.9.0.1")}};
  Policy p;
  p.name = "many";
  p.isolates_ingress = true;
  Rule r;
  r.any_peer = false;
  for (int i = 0; i < 1000; ++i) {
    Peer b;
    b.ip_block = IpBlock{C(("11." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24").c_str()), {}};
    r.peers.push_back(b);
  }
  r.name = "default/many:ingress[0]";
  p.ingress = {r};
  RuleIds ids;
  auto c = compile(wl, {p}, {}, ids);
  ASSERT_TRUE(c) << c.error().message;
  // The 1,000 blocks of one rule are one identity: one rule entry, not 1,000.
  EXPECT_EQ(c->rules.size(), 1u);
  EXPECT_EQ(c->identities, 2u);  // the workload and the blocks
  EXPECT_EQ(c->prefixes.size(), 1001u);
}

}  // namespace
}  // namespace kagami::policy
