// The event-pipeline additions of the security issue, without the kernel:
// the rate limit per (module, rule, container) and the Falco output shape
// (sinks and the follow stream).
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/events.h"

namespace kagami::agent {
namespace {

using nlohmann::json;

class FixedClock : public core::Clock {
 public:
  uint64_t monotonic_ns() const override { return mono; }
  uint64_t wall_ns() const override { return 1'780'000'000'000'000'000ULL + mono; }
  uint64_t mono = 1'000'000'000ULL;
};

json alert(const std::string& rule, const std::string& cid, uint64_t mono) {
  return json{{"kind", "open"},
              {"mono_ns", mono},
              {"rule", rule},
              {"severity", "warning"},
              {"process", {{"tgid", 42}, {"pid", 42}, {"ppid", 1}, {"comm", "cat"}, {"uid", 0}}},
              {"container", {{"id", cid}, {"pod_uid", "p-1"}, {"cgroup_id", 7}}},
              {"file", {{"path", "/etc/shadow"}, {"flags", 0}}},
              {"actions", {"alert"}}};
}

TEST(SecurityPipeline, RuleRateLimitIsPerRuleAndContainer) {
  FixedClock clk;
  EventsSettings s;
  s.rule_rate = 10;
  s.rule_burst = 5;
  std::ostringstream out;
  EventBus bus(s, &clk, &out);
  const std::string noisy(64, 'a'), quiet(64, 'b');
  // 1000 alerts of one rule from the noisy container at one instant: the
  // burst passes, the rest is dropped and counted.
  for (int i = 0; i < 1000; ++i) bus.publish("security", alert("r1", noisy, clk.mono));
  // The quiet container, the same rule; and another rule of the noisy one.
  for (int i = 0; i < 3; ++i) bus.publish("security", alert("r1", quiet, clk.mono));
  bus.publish("security", alert("r2", noisy, clk.mono));
  // Events without a rule (exec module) are not limited here.
  for (int i = 0; i < 50; ++i) bus.publish("exec", json{{"kind", "exec"}});
  auto st = bus.stats_json();
  EXPECT_EQ(st["published"]["security"]["open"], 5 + 3 + 1);
  EXPECT_EQ(st["dropped"]["security"]["rule_rate_limit"], 995);
  EXPECT_EQ(st["published"]["exec"]["exec"], 50);
  // A second later the noisy bucket has refilled by rate (10).
  clk.mono += 1'000'000'000ULL;
  for (int i = 0; i < 100; ++i) bus.publish("security", alert("r1", noisy, clk.mono));
  EXPECT_EQ(bus.stats_json()["published"]["security"]["open"], 9 + 5);
  bool seen = false;
  for (const auto& m : bus.metric_families("n"))
    for (const auto& smp : m.samples)
      if (m.name == "kagami_events_dropped_total" && smp.labels.count("cause") &&
          smp.labels.at("cause") == "rule_rate_limit")
        seen = true;
  EXPECT_TRUE(seen) << "the rule_rate_limit drops are exported";
}

TEST(SecurityPipeline, FalcoShapeOnSinksAndStream) {
  FixedClock clk;
  EventsSettings s;
  s.to_stdout = true;
  s.format = "falco";
  s.rule_rate = 0;
  std::ostringstream out;
  EventBus bus(s, &clk, &out);
  bus.publish("security", alert("read-shadow", std::string(64, 'c'), clk.mono));
  json f = json::parse(out.str());
  for (const char* k : {"rule", "priority", "time", "output", "output_fields", "source", "tags", "hostname"})
    EXPECT_TRUE(f.contains(k)) << k << " missing: " << f.dump();
  EXPECT_EQ(f["rule"], "read-shadow");
  EXPECT_EQ(f["priority"], "Warning");
  EXPECT_EQ(f["output_fields"]["container.id"], std::string(12, 'c'));
  EXPECT_EQ(f["output_fields"]["fd.name"], "/etc/shadow");
  EXPECT_EQ(f["output_fields"]["proc.pid"], 42);
  EXPECT_EQ(f["output_fields"]["k8s.pod.uid"], "p-1");
  EXPECT_EQ(f["time"], bus.history()[0]["time"]);
  EXPECT_NE(f["output"].get<std::string>().find("Warning read-shadow"), std::string::npos);
  // History keeps the agent's own shape.
  EXPECT_EQ(bus.history()[0]["module"], "security");
  // The stream in Falco's shape.
  std::vector<std::string> chunks;
  stream_events(bus, {{"format", "falco"}, {"history", "1"}}, [&](std::string_view c) {
    chunks.emplace_back(c);
    return false;  // one chunk is enough
  });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(json::parse(chunks[0])["rule"], "read-shadow");
  // An event without a rule still has the shape.
  json g = to_falco(json{{"module", "exec"}, {"kind", "exec"}, {"time", "t"}}, "h");
  EXPECT_EQ(g["rule"], "kagami exec exec");
  EXPECT_EQ(g["priority"], "Informational");
  EXPECT_EQ(g["output_fields"]["container.id"], "host");
}

TEST(SecurityPipeline, ConfigKeysOfTheAdditions) {
  ParseOptions o;
  o.check_objects = false;
  auto c = parse_config("agent:\n  events: {format: falco, rule_rate: 0, rule_burst: 7}\n", o);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->agent.events.format, "falco");
  EXPECT_EQ(c->agent.events.rule_rate, 0u);
  EXPECT_EQ(c->agent.events.rule_burst, 7u);
  auto d = parse_config("agent: {}\n", o);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->agent.events.format, "json");
  EXPECT_EQ(d->agent.events.rule_rate, 100u);
  auto bad = parse_config("agent:\n  events:\n    format: xml\n", o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("agent.events.format"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("json or falco"), std::string::npos);
  auto burst0 = parse_config("agent:\n  events: {rule_burst: 0}\n", o);
  EXPECT_FALSE(burst0);
}

// The config's top-level workloads reach the security module too (its
// namespace and pod_labels selectors), without the policy module's keys.
TEST(SecurityPipeline, TopLevelWorkloadsReachTheSecurityModule) {
  ParseOptions o;
  o.check_objects = false;
  auto c = parse_config(R"(modules:
  security: {enabled: true}
workloads:
  - {name: amf, namespace: core5g, labels: {app: amf}, netns: amf-ns}
)",
                        o);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->modules.count("security"));
  const json& w = c->modules.at("security").section["workloads"];
  ASSERT_TRUE(w.is_array()) << c->modules.at("security").section.dump();
  EXPECT_EQ(w[0]["labels"]["app"], "amf");
  EXPECT_EQ(c->modules.at("policy").section["workloads"], w);
  // Without the security module listed, nothing is added for it.
  auto d = parse_config("workloads:\n  - {name: a, netns: x}\n", o);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_FALSE(d->modules.count("security"));
}

}  // namespace
}  // namespace kagami::agent
