// BPF run-time stats on demand (StatsMode::OnDemand, the agent's default):
// counters stand still outside a sampling window and move inside one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>

#include "pm_fixture.h"

namespace kagami::test {
namespace {

class PmStats : public PmTest {
 protected:
  void SetUp() override {
    PmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pm_.reset();  // a manager that keeps stats off
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    o.stats = core::StatsMode::OnDemand;
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
  }
};

TEST_F(PmStats, OnDemandCountsOnlyInsideTheWindow) {
  ASSERT_TRUE(pm_->load(request("s", "hooks", {"raw_tp:sys_enter"})));
  auto run_cnt = [&] {
    auto g = pm_->get("s");
    uint64_t n = 0;
    if (g)
      for (const auto& p : g->progs) n += p.run_cnt;
    return n;
  };
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) {
      syscall(SYS_getpid);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const uint64_t before = run_cnt();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Unless someone else on the node holds stats on, nothing was counted.
  const uint64_t idle = run_cnt() - before;
  auto s = pm_->sample_stats(std::chrono::milliseconds(300));
  stop = true;
  busy.join();
  ASSERT_TRUE(s) << s.error().message;
  uint64_t sampled = 0;
  for (const auto& x : *s)
    if (x.program == "s") sampled += x.run_cnt;
  EXPECT_GT(sampled, 10u) << "the window counted the syscalls";
  if (idle > 0) GTEST_SKIP() << "another process holds BPF stats on (counted " << idle << " outside the window)";
}

TEST_F(PmStats, EmptyManagerSamplesNothing) {
  auto s = pm_->sample_stats(std::chrono::milliseconds(10));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->empty());
}

}  // namespace
}  // namespace kagami::test
