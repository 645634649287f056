// The `gtpu:` part of KagamiNetworkPolicy rules: what it accepts, what it
// compiles to, and the errors (file:line:col and the field).
#include <gtest/gtest.h>

#include "modules/policy/abi.h"
#include "modules/policy/compile.h"
#include "modules/policy/model.h"

namespace kagami::policy {
namespace {

const std::string kHead = "apiVersion: kagami.io/v1alpha1\nkind: KagamiNetworkPolicy\nmetadata: {name: n3}\nspec:\n"
                          "  podSelector: {matchLabels: {app: upf}}\n";

TEST(PolicyGtpuParse, AcceptsTeidQfiInnerPrefixesAndPorts) {
  auto p = parse_policies(kHead + R"(  ingress:
    - action: deny
      gtpu: {teid: 0x1234, qfi: 9, src: 10.45.0.0/16, dst: 8.8.8.8, ports: [{protocol: UDP, port: 53, endPort: 60}]}
    - gtpu: {}
    - ports: [{protocol: UDP, port: 2152}]
  egress:
    - gtpu: {teid: 4660}
)", "n3.yaml");
  ASSERT_TRUE(p) << p.error().message;
  const Rule& r = (*p)[0].ingress[0];
  ASSERT_TRUE(r.gtpu);
  EXPECT_TRUE(r.deny);
  EXPECT_EQ(r.gtpu->teid, 0x1234u);
  EXPECT_EQ(r.gtpu->qfi, 9);
  EXPECT_EQ(r.gtpu->src->str(), "10.45.0.0/16");
  EXPECT_EQ(r.gtpu->dst->str(), "8.8.8.8/32");
  ASSERT_EQ(r.gtpu->ports.size(), 1u);
  EXPECT_EQ(r.gtpu->ports[0].first, 53);
  EXPECT_EQ(r.gtpu->ports[0].last, 60);
  EXPECT_TRUE((*p)[0].ingress[1].gtpu);
  EXPECT_TRUE((*p)[0].ingress[1].gtpu->any_port);
  EXPECT_FALSE((*p)[0].ingress[2].gtpu);
  EXPECT_EQ((*p)[0].egress[0].gtpu->teid, 4660u);
  // gtpu allow rules isolate the tunnel layer only: the outer egress is free.
  EXPECT_TRUE((*p)[0].isolates_ingress);  // the UDP 2152 rule
  EXPECT_FALSE((*p)[0].isolates_egress);

  std::vector<Workload> wl(1);
  wl[0] = {"upf", "default", {{"app", "upf"}}, "", "", {*parse_cidr("10.7.0.1")}};
  RuleIds ids;
  auto c = compile(wl, *p, {}, ids);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->gtp.size(), 3u);
  EXPECT_TRUE(c->gtp[0].deny);
  EXPECT_FALSE(c->gtp[0].any_proto);
  EXPECT_EQ(c->gtp[0].proto, 17);
  EXPECT_EQ(c->gtp[0].port_hi, 60);
  EXPECT_TRUE(c->gtp[1].any_proto);
  EXPECT_EQ(c->gtp[2].dir, POL_DIR_EGRESS);
  const uint32_t f = c->local_flags.begin()->second;
  EXPECT_EQ(f & (POL_LOCAL_GTP_INGRESS | POL_LOCAL_GTP_ISO_INGRESS | POL_LOCAL_GTP_EGRESS | POL_LOCAL_GTP_ISO_EGRESS),
            uint32_t(POL_LOCAL_GTP_INGRESS | POL_LOCAL_GTP_ISO_INGRESS | POL_LOCAL_GTP_EGRESS | POL_LOCAL_GTP_ISO_EGRESS));
  EXPECT_FALSE(f & POL_LOCAL_DENY_INGRESS);  // a gtpu deny is not an outer deny
}

TEST(PolicyGtpuParse, ErrorsNameFileLineColumnAndField) {
  struct Case {
    std::string rule, want;
  } cases[] = {
      {"    - gtpu: {teid: 0x100000000}\n", "n3.yaml:7:20: spec.ingress[0].gtpu.teid: must be an integer in 0..0xffffffff"},
      {"    - gtpu: {teid: -1}\n", "spec.ingress[0].gtpu.teid: must be an integer"},
      {"    - gtpu: {qfi: 64}\n", "n3.yaml:7:19: spec.ingress[0].gtpu.qfi: must be in 0..63 (got 64)"},
      {"    - gtpu: {src: 10.0.0.0/8, dst: \"fd00::/8\"}\n", "spec.ingress[0].gtpu.dst: inner src 10.0.0.0/8 and dst fd00::/8 are of different families"},
      {"    - gtpu: {src: 10.0.0.1/8}\n", "spec.ingress[0].gtpu.src"},
      {"    - gtpu: {tied: 1}\n", "spec.ingress[0].gtpu: unknown key 'tied'"},
      {"    - {gtpu: {}, ports: [{port: 1}]}\n", "spec.ingress[0].gtpu: a gtpu rule judges the tunnel's inner flows and takes no 'from' or 'ports'"},
      {"    - gtpu: {ports: [{protocol: ICMP, port: 3}]}\n", "spec.ingress[0].gtpu.ports[0]: ICMP has no ports"},
  };
  for (const auto& c : cases) {
    auto p = parse_policies(kHead + "  ingress:\n" + c.rule, "n3.yaml");
    ASSERT_FALSE(p) << c.rule;
    EXPECT_NE(p.error().message.find(c.want), std::string::npos) << p.error().message;
  }
  // Not in the Kubernetes kind.
  auto k = parse_policies("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n"
                          "  podSelector: {}\n  ingress:\n    - gtpu: {}\n", "k.yaml");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("unknown key 'gtpu'"), std::string::npos) << k.error().message;
}

TEST(PolicyGtpuParse, TooManyEntriesFailToCompile) {
  std::string y = kHead + "  ingress:\n";
  for (int i = 0; i < 130; ++i) y += "    - gtpu: {teid: " + std::to_string(i) + "}\n";
  auto p = parse_policies(y, "n3.yaml");
  ASSERT_TRUE(p) << p.error().message;
  std::vector<Workload> wl(1);
  wl[0] = {"upf", "default", {{"app", "upf"}}, "", "", {*parse_cidr("10.7.0.1")}};
  RuleIds ids;
  auto c = compile(wl, *p, {}, ids);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("more than 128 GTP-U rule entries"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace kagami::policy
