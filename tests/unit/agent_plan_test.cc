// Apply planning: only what changed is touched; CLI programs survive applies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/plan.h"

namespace kagami::agent {
namespace {

DesiredProgram want(const std::string& name, const std::string& sha, std::vector<std::string> attach,
                    const std::string& origin = kOriginConfig) {
  DesiredProgram d;
  d.request.name = name;
  for (const auto& a : attach) {
    auto ap = core::AttachPoint::parse(a);
    EXPECT_TRUE(ap.has_value()) << a;
    d.request.attach.push_back(*ap);
  }
  d.origin = origin;
  d.sha256 = sha;
  return d;
}

CurrentProgram have(const std::string& name, const std::string& sha, std::vector<std::string> attach,
                    const std::string& origin = kOriginConfig) {
  return CurrentProgram{name, origin, sha, std::move(attach)};
}

const PlannedStep* step(const ApplyPlan& p, const std::string& name) {
  for (const auto& s : p.steps)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Plan, EverythingNewIsAdded) {
  auto p = plan_apply({want("a", "s1", {"xdp:eth0"}), want("b", "s2", {"tc:eth0:ingress"})}, {});
  EXPECT_EQ(p.count(Action::Add), 2u);
  EXPECT_TRUE(p.changes_anything());
}

TEST(Plan, IdenticalIsKept) {
  auto p = plan_apply({want("a", "s1", {"xdp:eth0", "tc:eth0:egress"})},
                      {have("a", "s1", {"tc:eth0:egress", "xdp:eth0"})});  // order does not matter
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].action, Action::Keep);
  EXPECT_FALSE(p.changes_anything());
}

TEST(Plan, OnlyTheChangedProgramIsReplaced) {
  auto p = plan_apply({want("a", "s1", {"xdp:eth0"}), want("b", "NEW", {"xdp:eth1"}),
                       want("c", "s3", {"xdp:eth2", "tc:eth2:ingress"})},
                      {have("a", "s1", {"xdp:eth0"}), have("b", "s2", {"xdp:eth1"}),
                       have("c", "s3", {"xdp:eth2"})});
  EXPECT_EQ(step(p, "a")->action, Action::Keep);
  EXPECT_EQ(step(p, "b")->action, Action::Replace);
  EXPECT_THAT(step(p, "b")->reason, ::testing::HasSubstr("object changed"));
  EXPECT_EQ(step(p, "c")->action, Action::Replace);
  EXPECT_THAT(step(p, "c")->reason, ::testing::HasSubstr("attach changed"));
  EXPECT_EQ(p.count(Action::Add) + p.count(Action::Remove), 0u);
}

TEST(Plan, RemovedFromConfigIsRemovedButCliProgramsStay) {
  auto p = plan_apply({want("a", "s1", {"xdp:eth0"})},
                      {have("a", "s1", {"xdp:eth0"}), have("gone", "s2", {"xdp:eth1"}),
                       have("adhoc", "s3", {"xdp:eth2"}, kOriginCli),
                       have("obs-xdp", "s4", {"xdp:eth3"}, module_origin("obs"))});
  EXPECT_EQ(step(p, "gone")->action, Action::Remove);
  EXPECT_EQ(step(p, "obs-xdp")->action, Action::Remove);  // module disabled / no longer planned
  EXPECT_EQ(step(p, "adhoc"), nullptr);                   // untouched: not even a step
  EXPECT_EQ(step(p, "a")->action, Action::Keep);
}

TEST(Plan, ConfigTakesOverACliProgram) {
  auto same = plan_apply({want("x", "s1", {"xdp:eth0"})}, {have("x", "s1", {"xdp:eth0"}, kOriginCli)});
  EXPECT_EQ(same.steps[0].action, Action::Keep);
  EXPECT_EQ(same.steps[0].origin, kOriginConfig);
  EXPECT_THAT(same.steps[0].reason, ::testing::HasSubstr("taken over"));
  auto diff = plan_apply({want("x", "s2", {"xdp:eth0"})}, {have("x", "s1", {"xdp:eth0"}, kOriginCli)});
  EXPECT_EQ(diff.steps[0].action, Action::Replace);
}

TEST(Plan, ExecutionOrderAddsReplacesRemovesKeeps) {
  auto p = plan_apply({want("keep", "k", {}), want("repl", "new", {}), want("add", "a", {})},
                      {have("keep", "k", {}), have("repl", "old", {}), have("rm", "r", {})});
  ASSERT_EQ(p.steps.size(), 4u);
  EXPECT_EQ(p.steps[0].action, Action::Add);
  EXPECT_EQ(p.steps[1].action, Action::Replace);
  EXPECT_EQ(p.steps[2].action, Action::Remove);
  EXPECT_EQ(p.steps[3].action, Action::Keep);
}

TEST(Plan, ModuleProgramsDiffLikeConfigPrograms) {
  const std::string obs = module_origin("obs");
  auto p = plan_apply({want("obs-xdp", "v2", {"xdp:eth0"}, obs)}, {have("obs-xdp", "v1", {"xdp:eth0"}, obs)});
  EXPECT_EQ(p.steps[0].action, Action::Replace);
  auto q = plan_apply({want("obs-xdp", "v1", {"xdp:eth0"}, obs)}, {have("obs-xdp", "v1", {"xdp:eth0"}, obs)});
  EXPECT_EQ(q.steps[0].action, Action::Keep);
}

}  // namespace
}  // namespace kagami::agent
