// The CiliumNetworkPolicy rules.http parser and compiler: what the kernel
// decides (method alternatives, exact and prefix paths, any), what it
// refuses with file:line:col, and what a compiled table holds.
#include <gtest/gtest.h>

#include "modules/policy/l7/abi.h"
#include "modules/policy/l7/l7_model.h"
#include "modules/policy/l7/l7_module.h"

namespace kagami::policy::l7 {
namespace {

constexpr const char* kPolicy = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: default
spec:
  endpointSelector:
    matchLabels: {app: server}
  ingress:
    - fromEndpoints:
        - matchLabels: {"k8s:app": client}
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules:
            http:
              - method: "GET|HEAD"
                path: "/public/.*"
              - method: POST
                path: "/api/v1/items"
              - path: "/health"
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: other}
spec: {podSelector: {}}
)";

std::vector<Workload> workloads() {
  Workload s{"server", "default", {{"app", "server"}}, "", "/sys/fs/cgroup/unified/srv", {}};
  Workload c{"client", "default", {{"app", "client"}}, "", "/sys/fs/cgroup/unified/cli", {}};
  s.addresses.push_back(*parse_cidr("10.0.0.1"));
  c.addresses.push_back(*parse_cidr("10.0.0.2"));
  return {s, c};
}

TEST(L7Parse, CiliumHttpRules) {
  auto ps = parse_l7_policies(kPolicy, "web.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  ASSERT_EQ(ps->size(), 1u);  // the NetworkPolicy is the policy module's
  const auto& p = (*ps)[0];
  EXPECT_EQ(p.name, "web");
  ASSERT_EQ(p.ingress.size(), 1u);
  ASSERT_EQ(p.ingress[0].from.size(), 1u);
  EXPECT_EQ(p.ingress[0].from[0].match_labels.at("app"), "client");  // "k8s:" stripped
  const auto& http = p.ingress[0].to_ports[0].http;
  ASSERT_EQ(http.size(), 3u);
  EXPECT_EQ(http[0].methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(http[0].path.kind, PathKind::Prefix);
  EXPECT_EQ(http[0].path.literal, "/public/");
  EXPECT_EQ(http[1].path.kind, PathKind::Exact);
  EXPECT_TRUE(http[2].methods.empty());
  EXPECT_EQ(http[2].line, 20);
}

TEST(L7Parse, PathRegexSubset) {
  EXPECT_EQ(parse_path_regex(".*")->kind, PathKind::Any);
  EXPECT_EQ(parse_path_regex("")->kind, PathKind::Any);
  EXPECT_EQ(parse_path_regex("^/a/b$")->literal, "/a/b");
  EXPECT_EQ(parse_path_regex("/v1\\.0/x")->literal, "/v1.0/x");
  EXPECT_EQ(parse_path_regex("/v1\\.0/x")->kind, PathKind::Exact);
  EXPECT_EQ(parse_path_regex("/x.*")->kind, PathKind::Prefix);
  EXPECT_EQ(parse_path_regex("/.*")->literal, "/");
  for (const char* bad : {"/a/(b|c)", "/a.b", "/a/[0-9]+", "/a?", "/a\\d", "/a b"}) {
    auto r = parse_path_regex(bad);
    EXPECT_FALSE(r) << bad;
  }
  EXPECT_FALSE(parse_path_regex("/" + std::string(L7_MAX_PATH, 'a')));
  EXPECT_EQ(parse_method_regex("GET|POST")->size(), 2u);
  EXPECT_TRUE(parse_method_regex(".*")->empty());
  EXPECT_FALSE(parse_method_regex("get"));
  EXPECT_FALSE(parse_method_regex("G.T"));
}

TEST(L7Parse, ErrorsNameFileLineColumn) {
  auto e = [](const std::string& text) {
    auto r = parse_l7_policies(text, "p.yaml");
    EXPECT_FALSE(r) << text;
    return r ? std::string() : r.error().message;
  };
  std::string bad = kPolicy;
  bad.replace(bad.find("\"/public/.*\""), 12, "\"/a/(b|c)\"  ");
  const std::string m = e(bad);
  EXPECT_NE(m.find("p.yaml:17:23: spec.ingress[0].toPorts[0].rules.http[0].path: regex '/a/(b|c)'"), std::string::npos) << m;
  std::string hdr = kPolicy;
  hdr.replace(hdr.find("              - path: \"/health\""), 31, "              - headers: [\"X: y\"]");
  EXPECT_NE(e(hdr).find("p.yaml:20:17: spec.ingress[0].toPorts[0].rules.http[2].headers: is not supported"),
            std::string::npos) << e(hdr);
  std::string api = kPolicy;
  api.replace(0, 23, "apiVersion: cilium.io/v1");
  EXPECT_NE(e(api).find("p.yaml:1:13: apiVersion: CiliumNetworkPolicy needs cilium.io/v2"), std::string::npos) << e(api);
  std::string l4 = kPolicy;
  l4.replace(l4.find("          rules:"), 0, "        - ports: [{port: \"53\"}]\n");
  EXPECT_NE(e(l4).find("needs rules.http"), std::string::npos) << e(l4);
  std::string udp = kPolicy;
  udp.replace(udp.find("protocol: TCP"), 13, "protocol: UDP");
  EXPECT_NE(e(udp).find("p.yaml:13:44: spec.ingress[0].toPorts[0].ports[0].protocol: HTTP rules need TCP"), std::string::npos)
      << e(udp);
  const std::string eg =
      e("kind: CiliumNetworkPolicy\napiVersion: cilium.io/v2\nmetadata: {name: x}\nspec: {endpointSelector: {}, egress: []}\n");
  EXPECT_NE(eg.find("p.yaml:4:30: spec.egress: is not supported"), std::string::npos) << eg;
  EXPECT_NE(e("a: [\n").find("p.yaml:"), std::string::npos);
}

TEST(L7Compile, RulesPortsPeersCgroups) {
  auto ps = parse_l7_policies(kPolicy, "web.yaml");
  ASSERT_TRUE(ps);
  auto c = compile_l7(workloads(), *ps);
  ASSERT_TRUE(c) << c.error().message;
  // GET + HEAD + POST + any-method: 4 kernel rules, 3 named rules.
  ASSERT_EQ(c->rules.size(), 4u);
  EXPECT_EQ(c->rule_names.size(), 4u);
  EXPECT_EQ(c->rule_names[1], "default/web:ingress[0].toPorts[0].http[0]");
  for (const auto& r : c->rules) {
    EXPECT_EQ(r.port, 8080);
    EXPECT_EQ(r.src_ident, 2u);  // the client workload
  }
  EXPECT_EQ(c->ports, (std::vector<uint16_t>{8080}));
  EXPECT_EQ(c->cgroups, (std::vector<std::string>{"/sys/fs/cgroup/unified/srv"}));
  EXPECT_EQ(c->peers.size(), 2u);
  // A policy selecting no workload compiles to nothing.
  auto w = workloads();
  w[0].labels["app"] = "else";
  auto none = compile_l7(w, *ps);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->rules.empty());
}

TEST(L7Config, Section) {
  EXPECT_TRUE(parse_l7_config({{"files", {"a.yaml"}}}));
  auto e = parse_l7_config({{"files", {"a.yaml"}}, {"cgroups", {"rel"}}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("cgroups"), std::string::npos);
  EXPECT_FALSE(parse_l7_config({{"files", {"a"}}, {"bogus", 1}}));
  EXPECT_FALSE(parse_l7_config(nlohmann::json::object()));
}

TEST(L7Metrics, Labels) {
  std::vector<StatRow> rows{{1, L7_R_RULE, L7_V_ALLOW, 8080, 3, 300}, {0, L7_R_NO_RULE, L7_V_DENY, 8080, 2, 100}};
  auto f = build_metrics(rows, {"none", "default/web:ingress[0].toPorts[0].http[0]"}, Applied{4, 0, 4, 1, 2}, "n1");
  ASSERT_EQ(f[0].name, "kagami_policy_l7_requests_total");
  ASSERT_EQ(f[0].samples.size(), 2u);
  EXPECT_EQ(f[0].samples[1].labels.at("reason"), "no_rule");
  EXPECT_EQ(f[0].samples[1].labels.at("verdict"), "deny");
  EXPECT_EQ(f[0].samples[0].labels.at("rule"), "default/web:ingress[0].toPorts[0].http[0]");
}

}  // namespace
}  // namespace kagami::policy::l7
