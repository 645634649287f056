// Program manager: the trust policy for custom (non-builtin) code.
#include <gmock/gmock.h>

#include "bpf/object.h"
#include "pm_fixture.h"

using ::testing::HasSubstr;

namespace kagami::test {
namespace {

class PmTrust : public PmTest {
 protected:
  void with_policy(core::TrustPolicy t) {
    pm_.reset();
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    o.trust = std::move(t);
    auto m = core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
  }
};

TEST_F(PmTrust, DigestAllowList) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string tc = "tc:" + h->host_if + ":egress";
  with_policy({{std::string(64, '0')}, {}});
  auto r = pm_->load(request("c", "count_v1", {tc}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("is not in the allow-list"));
  EXPECT_THAT(r.error().message, HasSubstr("sha256:"));
  EXPECT_TRUE(pm_->list().empty());
  // Built-in code is not subject to the custom-code policy.
  auto req = request("c", "count_v1", {tc});
  req.builtin = true;
  auto b = pm_->load(req);
  ASSERT_TRUE(b) << b.error().message;
  const std::string digest = b->sha256;
  ASSERT_TRUE(pm_->unload("c"));
  with_policy({{digest}, {}});
  auto ok = pm_->load(request("c", "count_v1", {tc}));
  ASSERT_TRUE(ok) << ok.error().message;
  // Replacing with an object not on the list is refused; the old one stays.
  auto rep = pm_->replace("c", request("c", "count_v2", {}));
  ASSERT_FALSE(rep);
  EXPECT_THAT(rep.error().message, HasSubstr("not in the allow-list"));
  EXPECT_EQ(pm_->get("c")->generation, 1u);
}

TEST_F(PmTrust, ProgramTypeAllowList) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string tc = "tc:" + h->host_if + ":egress";
  with_policy({{}, {"sched_cls"}});
  // count.bpf.o carries an XDP program too: refused, naming it.
  auto r = pm_->load(request("c", "count_v1", {tc}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("program type xdp (program count_xdp) is not permitted"));
  with_policy({{}, {"sched_cls", "xdp"}});
  auto ok = pm_->load(request("c", "count_v1", {tc}));
  ASSERT_TRUE(ok) << ok.error().message;
}

}  // namespace
}  // namespace kagami::test
