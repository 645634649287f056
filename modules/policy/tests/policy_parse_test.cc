// Parsing NetworkPolicy / KagamiNetworkPolicy YAML, workloads and the
// policy section: semantics as Kubernetes states them, errors with file,
// line and column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "modules/policy/model.h"

namespace kagami::policy {
namespace {

// The example of https://kubernetes.io/docs/concepts/services-networking/network-policies/
const char* kDocsExample = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
              - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
      ports:
        - protocol: TCP
          port: 6379
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 5978
)";

TEST(PolicyParse, KubernetesDocsExample) {
  auto ps = parse_policies(kDocsExample, "np.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  ASSERT_EQ(ps->size(), 1u);
  const Policy& p = (*ps)[0];
  EXPECT_EQ(p.kind, "NetworkPolicy");
  EXPECT_EQ(p.name, "test-network-policy");
  EXPECT_TRUE(p.isolates_ingress);
  EXPECT_TRUE(p.isolates_egress);
  EXPECT_TRUE(p.pod_selector.matches({{"role", "db"}, {"x", "y"}}));
  EXPECT_FALSE(p.pod_selector.matches({{"role", "web"}}));
  ASSERT_EQ(p.ingress.size(), 1u);
  const Rule& r = p.ingress[0];
  ASSERT_EQ(r.peers.size(), 3u);
  ASSERT_TRUE(r.peers[0].ip_block);
  EXPECT_EQ(r.peers[0].ip_block->cidr.str(), "172.17.0.0/16");
  EXPECT_EQ(r.peers[0].ip_block->except[0].str(), "172.17.1.0/24");
  EXPECT_TRUE(r.peers[1].ns && !r.peers[1].pod);
  EXPECT_TRUE(r.peers[2].pod && !r.peers[2].ns);
  ASSERT_EQ(r.ports.size(), 1u);
  EXPECT_EQ(r.ports[0].proto, 6);
  EXPECT_EQ(r.ports[0].first, 6379);
  EXPECT_EQ(r.name, "default/test-network-policy:ingress[0]");
  EXPECT_EQ(p.egress[0].ports[0].first, 5978);
}

TEST(PolicyParse, DefaultPolicyTypesAndDefaultDenyShapes) {
  // deny-all ingress: podSelector {} and no rules -> Ingress only.
  auto a = parse_policies("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d}\nspec: {podSelector: {}}\n", "a");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE((*a)[0].isolates_ingress);
  EXPECT_FALSE((*a)[0].isolates_egress);
  // allow-all egress: "egress: [{}]" -> Egress isolated with an any-peer any-port rule.
  auto b = parse_policies("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: e}\n"
                          "spec: {podSelector: {}, egress: [{}], policyTypes: [Egress]}\n", "b");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_FALSE((*b)[0].isolates_ingress);
  ASSERT_EQ((*b)[0].egress.size(), 1u);
  EXPECT_TRUE((*b)[0].egress[0].any_peer);
  EXPECT_TRUE((*b)[0].egress[0].any_port);
}

TEST(PolicyParse, MatchExpressionsAndEndPortAndSctp) {
  auto ps = parse_policies(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: core}
spec:
  podSelector:
    matchExpressions:
      - {key: tier, operator: In, values: [amf, smf]}
      - {key: canary, operator: DoesNotExist}
  ingress:
    - ports:
        - {protocol: SCTP, port: 38412}
        - {protocol: UDP, port: 32000, endPort: 32768}
)", "x.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  const Policy& p = (*ps)[0];
  EXPECT_EQ(p.ns, "core");
  EXPECT_TRUE(p.pod_selector.matches({{"tier", "amf"}}));
  EXPECT_FALSE(p.pod_selector.matches({{"tier", "amf"}, {"canary", "1"}}));
  EXPECT_FALSE(p.pod_selector.matches({{"tier", "upf"}}));
  EXPECT_EQ(p.ingress[0].ports[0].proto, 132);
  EXPECT_EQ(p.ingress[0].ports[1].proto, 17);
  EXPECT_EQ(p.ingress[0].ports[1].last, 32768);
  Selector notin;
  notin.exprs.push_back({"env", Requirement::Op::NotIn, {"prod"}});
  EXPECT_TRUE(notin.matches({}));  // Kubernetes: an absent key satisfies NotIn
  EXPECT_FALSE(notin.matches({{"env", "prod"}}));
}

TEST(PolicyParse, KagamiKindDenyAndIcmp) {
  auto ps = parse_policies(R"(apiVersion: kagami.io/v1alpha1
kind: KagamiNetworkPolicy
metadata: {name: k}
spec:
  podSelector: {matchLabels: {app: upf}}
  ingress:
    - action: deny
      from: [{ipBlock: {cidr: 192.0.2.0/24}}]
    - action: allow
      ports: [{protocol: ICMP, icmpType: 8}]
)", "k.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  const Policy& p = (*ps)[0];
  EXPECT_TRUE(p.ingress[0].deny);
  EXPECT_FALSE(p.ingress[1].deny);
  EXPECT_EQ(p.ingress[1].ports[0].proto, 1);
  EXPECT_EQ(p.ingress[1].ports[0].first, 8);
  EXPECT_TRUE(p.isolates_ingress);   // it has an allow rule
  EXPECT_FALSE(p.isolates_egress);
  auto only_deny = parse_policies("apiVersion: kagami.io/v1alpha1\nkind: KagamiNetworkPolicy\nmetadata: {name: d}\n"
                                  "spec: {podSelector: {}, egress: [{action: deny, to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}\n", "d");
  ASSERT_TRUE(only_deny) << only_deny.error().message;
  EXPECT_FALSE((*only_deny)[0].isolates_egress);  // deny rules take nothing else away
}

TEST(PolicyParse, EdgePolicy) {
  auto ps = parse_policies("apiVersion: kagami.io/v1alpha1\nkind: KagamiEdgePolicy\nmetadata: {name: flood}\n"
                           "spec: {deny: [192.0.2.0/24, 2001:db8::/32]}\n", "e.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  EXPECT_EQ((*ps)[0].edge_deny.size(), 2u);
  EXPECT_FALSE((*ps)[0].isolates_ingress);
  auto bad = parse_policies("apiVersion: kagami.io/v1alpha1\nkind: KagamiEdgePolicy\nmetadata: {name: flood}\n"
                            "spec: {deny: [192.0.2.1/24]}\n", "e.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("e.yaml:4:15: spec.deny[0]: '192.0.2.1/24': host bits set"), std::string::npos)
      << bad.error().message;
}

// Every error names file:line:column and the field.
struct BadCase {
  const char* yaml;
  const char* expect;
};

TEST(PolicyParse, ErrorsNameFileLineColumnAndField) {
  const std::string head = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n}\n";
  const BadCase cases[] = {
      {"spec:\n  podSelector: {}\n  ingress:\n    - ports:\n        - {port: 443, endPort: 80}\n",
       "p.yaml:8:32: spec.ingress[0].ports[0].endPort: must be >= port (got 80 < 443)"},
      {"spec:\n  podSelector: {}\n  ingres: []\n", "p.yaml:6:3: spec: unknown key 'ingres'"},
      {"spec:\n  podSelector: {}\n  ingress:\n    - ports: [{protocol: ICMP}]\n",
       "p.yaml:7:26: spec.ingress[0].ports[0].protocol: unknown protocol 'ICMP'"},
      {"spec:\n  podSelector: {}\n  ingress:\n    - from: [{ipBlock: {cidr: 10.0.0.1/8}}]\n",
       "p.yaml:7:31: spec.ingress[0].from[0].ipBlock.cidr: '10.0.0.1/8': host bits set beyond /8 (did you mean 10.0.0.0/8?)"},
      {"spec:\n  podSelector: {}\n  ingress:\n    - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]\n",
       "spec.ingress[0].from[0].ipBlock.except[0]: 11.0.0.0/16 is not strictly inside cidr 10.0.0.0/8"},
      {"spec:\n  podSelector: {}\n  ingress:\n    - ports: [{port: http}]\n", "named port 'http' is not supported"},
      {"spec:\n  podSelector:\n    matchExpressions: [{key: a, operator: Is}]\n", "unknown operator 'Is'"},
      {"spec:\n  podSelector: {}\n  ingress:\n    - from: [{podSelector: {}, ipBlock: {cidr: 1.2.3.4/32}}]\n",
       "ipBlock cannot be combined"},
      {"spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  egress: [{}]\n", "policyTypes has no Egress"},
      {"spec:\n  podSelector: {\n", "p.yaml:7:1: bad YAML"},
  };
  for (const auto& c : cases) {
    auto r = parse_policies(head + c.yaml, "p.yaml");
    ASSERT_FALSE(r) << c.yaml;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << "got: " << r.error().message;
  }
  auto k = parse_policies("apiVersion: v1\nkind: Pod\nmetadata: {name: n}\nspec: {}\n", "q.yaml");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("q.yaml:2:7: kind: unknown kind 'Pod'"), std::string::npos) << k.error().message;
}

TEST(PolicyParse, LinesCountAcrossDocuments) {
  const std::string two = std::string(kDocsExample) + "---\n" +
                          "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: second}\n"
                          "spec:\n  podSelector: {}\n  ingress:\n    - ports: [{protocol: TCPX}]\n";
  auto r = parse_policies(two, "multi.yaml");
  ASSERT_FALSE(r);
  // kDocsExample has 34 lines, "---" is line 35; the bad protocol is on
  // line 36 + 6.
  EXPECT_NE(r.error().message.find("multi.yaml:42:26: spec.ingress[0].ports[0].protocol"), std::string::npos)
      << r.error().message;
  auto ok2 = parse_policies(std::string(kDocsExample) + "---\n" + "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                            "metadata: {name: second}\nspec: {podSelector: {}}\n", "m");
  ASSERT_TRUE(ok2) << ok2.error().message;
  EXPECT_EQ(ok2->size(), 2u);
  EXPECT_EQ((*ok2)[1].line, 36);
  auto dup = parse_policies(std::string(kDocsExample) + "---\n" + kDocsExample, "dup.yaml");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("defined twice"), std::string::npos);
}

TEST(PolicyParse, FilesAndFolders) {
  const auto dir = std::filesystem::temp_directory_path() / ("kagami-policy-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Rm { std::filesystem::path p; ~Rm() { std::error_code ec; std::filesystem::remove_all(p, ec); } } rm{dir};
  std::ofstream(dir / "a.yaml") << kDocsExample;
  std::ofstream(dir / "b.yml") << "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b}\nspec: {podSelector: {}}\n";
  std::ofstream(dir / "notes.txt") << "not a policy";
  auto ps = load_policy_files({dir.string()});
  ASSERT_TRUE(ps) << ps.error().message;
  EXPECT_EQ(ps->size(), 2u);
  std::ofstream(dir / "c.yaml") << "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b}\nspec: {podSelector: {}}\n";
  auto dup = load_policy_files({dir.string()});
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("c.yaml:1: NetworkPolicy default/b is also defined in another file"), std::string::npos)
      << dup.error().message;
  auto missing = load_policy_files({(dir / "nope.yaml").string()});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.yaml"), std::string::npos);
}

TEST(PolicyConfigParse, WorkloadsAndSection) {
  auto w = parse_workloads(nlohmann::json::parse(
      R"([{"name":"server","namespace":"default","labels":{"app":"server"},"netns":"test-a"},
          {"name":"cnf","labels":{"app":"upf"},"cgroup":"/sys/fs/cgroup/upf","ips":["10.1.0.5","fd00::5"]}])"));
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ((*w)[1].addresses.size(), 2u);
  EXPECT_EQ((*w)[1].ns, "default");
  struct { const char* j; const char* e; } bad[] = {
      {R"([{"name":"a"}])", "workloads[0]: give exactly one of netns and cgroup"},
      {R"([{"name":"a","netns":"x","labels":{"n":1}}])", "workloads[0].labels.n: label values are strings"},
      {R"([{"name":"a","netns":"x","ips":["10.0.0.0/8"]}])", "workloads[0].ips[0]: a workload address is one host"},
      {R"([{"name":"a","netns":"x","colour":"red"}])", "unknown key 'colour'"},
      {R"([{"name":"a","netns":"x"},{"name":"a","netns":"y"}])", "workloads[1]: workload default/a declared twice"},
      {R"([{"name":"a","cgroup":"/sys/fs/cgroup/x"}])", "a cgroup workload needs ips"},
  };
  for (const auto& b : bad) {
    auto r = parse_workloads(nlohmann::json::parse(b.j));
    ASSERT_FALSE(r) << b.j;
    EXPECT_NE(r.error().message.find(b.e), std::string::npos) << r.error().message;
  }
  auto s = parse_policy_config(nlohmann::json::parse(R"({"files":["/p"],"interfaces":["veth1"],"namespaces":{"prod":{"team":"a"}}})"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(namespace_labels(s->namespaces, "prod").at("team"), "a");
  EXPECT_EQ(namespace_labels(s->namespaces, "prod").at("kubernetes.io/metadata.name"), "prod");
  auto e = parse_policy_config(nlohmann::json::parse(R"({"interfaces":["a:b"]})"));
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("policy.interfaces"), std::string::npos) << e.error().message;
}

}  // namespace
}  // namespace kagami::policy
