// The agent config's top-level `workloads:` and `policy:` become the policy
// module's section (src/agent/config.cc), and the module's plan() reads it.
#include <gtest/gtest.h>

#include "agent/config.h"
#include "modules/policy/policy_module.h"

namespace kagami::policy {
namespace {

agent::ParseOptions opts() {
  agent::ParseOptions o;
  o.base_dir = "/etc/kagami";
  o.check_objects = false;
  return o;
}

TEST(PolicyAgentConfig, TopLevelKeysFoldIntoTheModuleSection) {
  auto c = agent::parse_config(R"(workloads:
  - {name: server, namespace: default, labels: {app: server}, netns: test-a}
  - {name: upf, labels: {app: upf}, cgroup: /sys/fs/cgroup/upf, ips: [10.1.0.5]}
policy:
  files: [./policies/, /abs/p.yaml]
  interfaces: [veth1]
)", opts());
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->modules.count("policy"));
  const auto& m = c->modules.at("policy");
  EXPECT_TRUE(m.enabled);
  EXPECT_EQ(m.line, 5);  // where the policy mapping starts
  EXPECT_EQ(m.section["files"][0], "/etc/kagami/policies/");
  EXPECT_EQ(m.section["files"][1], "/abs/p.yaml");
  auto wl = parse_workloads(m.section["workloads"]);
  ASSERT_TRUE(wl) << wl.error().message;
  EXPECT_EQ((*wl)[0].netns, "test-a");
  auto pc = parse_policy_config(m.section);
  ASSERT_TRUE(pc) << pc.error().message;
  EXPECT_EQ(pc->interfaces[0], "veth1");
}

TEST(PolicyAgentConfig, ShapeErrorsNameTheFieldAndLine) {
  struct { const char* y; const char* e; } bad[] = {
      {"workloads: {name: a}\n", "workloads: must be a list, got a mapping (line 1)"},
      {"workloads: [a]\n", "workloads[0]: must be a mapping"},
      {"policy: [a]\n", "policy: must be a list"},
      {"modules:\n  policy: {files: [/x]}\npolicy:\n  files: [/y]\n", "policy.files: also given as modules.policy.files; keep one (line 4)"},
      {"polcy: {}\n", "unknown key 'polcy'"},
  };
  for (const auto& b : bad) {
    auto c = agent::parse_config(b.y, opts());
    ASSERT_FALSE(c) << b.y;
    if (std::string(b.e).find("must be a list") != std::string::npos && std::string(b.y).rfind("policy", 0) == 0) {
      EXPECT_NE(c.error().message.find("policy: must be a mapping"), std::string::npos) << c.error().message;
      continue;
    }
    EXPECT_NE(c.error().message.find(b.e), std::string::npos) << c.error().message;
  }
  agent::ParseOptions o = opts();
  o.known_modules = std::vector<std::string>{"obs"};
  auto none = agent::parse_config("policy: {files: [/x]}\n", o);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no policy module"), std::string::npos);
}

TEST(PolicyAgentConfig, PlanRejectsABadPolicyFileWithItsPosition) {
  PolicyModule m;
  core::ModuleContext ctx;
  auto r = m.plan(nlohmann::json{{"files", {"/nonexistent/kagami-policy.yaml"}}, {"interfaces", {"lo"}}}, ctx);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/kagami-policy.yaml"), std::string::npos) << r.error().message;
  auto ok = m.plan(nlohmann::json{{"interfaces", {"eth9"}}}, ctx);
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ((*ok)[0].attach.size(), 2u);
  EXPECT_EQ((*ok)[0].attach[0].to_string(), "tc:eth9:ingress@pol_tc_ingress#50");
}

}  // namespace
}  // namespace kagami::policy
