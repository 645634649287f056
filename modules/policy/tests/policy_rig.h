// Test rig: the policy object loaded through the ProgramManager (unique pin
// root, removed even when a test fails), policies written with the
// module's own write_policy(), packets judged through BPF_PROG_TEST_RUN.
#pragma once

#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>

#include "bpf/kernel.h"
#include "bpf/test_run.h"
#include "core/program_manager.h"
#include "modules/policy/compile.h"
#include "modules/policy/policy_module.h"
#include "policy.skel.h"
#include "support/netns.h"

namespace kagami::policy::test {

inline Cidr cidr(const char* s) {
  auto c = parse_cidr(s);
  EXPECT_TRUE(c) << s;
  return c ? *c : Cidr{};
}

class PolicyRig {
 public:
  // attach: the TC hooks (live tests). Empty: a test host's interface of
  // the rig's own (the manager loads nothing without an attach point);
  // TEST_RUN does not care where the programs are attached.
  Result<void> open(std::vector<std::string> attach = {}) {
    if (attach.empty()) {
      auto h = net_.add_host();
      if (!h) return h.error();
      attach = {"tc:" + h->host_if + ":ingress@pol_tc_ingress#50", "tc:" + h->host_if + ":egress@pol_tc_egress#50"};
    }
    static std::atomic<int> seq{0};
    pin_root_ = "/sys/fs/bpf/kagami-test-pol-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = core::ProgramManager::create(o);
    if (!m) return m.error();
    pm_ = std::move(*m);
    core::LoadRequest req;
    req.name = kProgramName;
    size_t sz = 0;
    const auto* b = static_cast<const uint8_t*>(policy_bpf__elf_bytes(&sz));
    req.source.bytes.assign(b, b + sz);
    req.source.label = "builtin:policy";
    req.builtin = true;
    for (const auto& s : attach) {
      auto ap = core::AttachPoint::parse(s);
      if (!ap) return ap.error();
      req.attach.push_back(*ap);
    }
    KAGAMI_TRY(pm_->load(req));
    auto in = bpf::obj_get(pin_root_ + "/policy/progs/pol_tc_ingress");
    if (!in) return in.error();
    auto eg = bpf::obj_get(pin_root_ + "/policy/progs/pol_tc_egress");
    if (!eg) return eg.error();
    auto xd = bpf::obj_get(pin_root_ + "/policy/progs/pol_xdp");
    if (!xd) return xd.error();
    ingress_ = std::move(*in);
    egress_ = std::move(*eg);
    xdp_ = std::move(*xd);
    return ok();
  }

  ~PolicyRig() {
    if (pm_) {
      for (const auto& p : pm_->list()) (void)pm_->unload(p.name);
      pm_.reset();
    }
    if (!pin_root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(pin_root_, ec);
    }
  }

  Result<Applied> apply(const std::vector<Workload>& wl, const std::vector<Policy>& ps, const Namespaces& nss = {},
                        uint32_t sample_rate = 0) {
    auto c = compile(wl, ps, nss, ids_);
    if (!c) return c.error();
    return write_compiled(*c, sample_rate);
  }

  Result<Applied> write_compiled(const Compiled& c, uint32_t sample_rate = 0) {
    std::vector<Fd> fds;
    return write_policy(
        [&](const std::string& m) -> Result<int> {
          auto fd = pm_->map_fd(kProgramName, m);
          if (!fd) return fd.error();
          fds.push_back(std::move(*fd));
          return fds.back().get();
        },
        c, sample_rate, 100);
  }

  // TC_ACT_UNSPEC (-1, allowed, hand on) or TC_ACT_SHOT (2).
  int judge(const std::vector<uint8_t>& pkt, bool to_workload) {
    bpf::TestRunInput in;
    in.packet = pkt;
    auto r = bpf::test_run_skb(to_workload ? egress_.get() : ingress_.get(), in);
    EXPECT_TRUE(r) << r.error().message;
    return r ? static_cast<int>(r->retval) : -100;
  }

  // XDP_DROP (1) or XDP_PASS (2: the end of a chain it is not part of).
  int judge_xdp(const std::vector<uint8_t>& pkt) {
    bpf::TestRunInput in;
    in.packet = pkt;
    auto r = bpf::test_run_xdp(xdp_.get(), in);
    EXPECT_TRUE(r) << r.error().message;
    return r ? static_cast<int>(r->retval) : -100;
  }

  core::ProgramManager& pm() { return *pm_; }
  RuleIds& ids() { return ids_; }

 private:
  kagami::test::TestNetwork net_;  // destroyed last: after the programs are gone
  std::string pin_root_;
  std::unique_ptr<core::ProgramManager> pm_;
  Fd ingress_, egress_, xdp_;
  RuleIds ids_;
};

inline constexpr int kPass = TC_ACT_UNSPEC;
inline constexpr int kDrop = TC_ACT_SHOT;

}  // namespace kagami::policy::test
