// TransportModule: config validation and hook choice (no root), and the
// whole path through the program manager (root): plan -> load -> traffic
// from a test cgroup -> collect()/snapshot(), for both hook variants.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/program_manager.h"
#include "modules/transport/transport.h"
#include "support/pins.h"
#include "support/netns.h"

namespace {

using kagami::modules::TransportHooks;
using kagami::modules::TransportModule;
using nlohmann::json;

auto fixed(bool tp_btf) {
  return [tp_btf](std::string_view f) { return f != "tp_btf" || tp_btf; };
}

std::string cg_root() {
  auto r = kagami::modules::cgroup2_root("/sys/fs/cgroup");
  return r ? *r : "";
}

// ---- config -------------------------------------------------------------------

TEST(TransportConfig, DefaultsAndValidValues) {
  auto c = kagami::modules::parse_transport_config(json::object());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->top_n_pods, 50u);
  EXPECT_EQ(c->hooks, "auto");
  EXPECT_EQ(c->cgroup_root, "/sys/fs/cgroup");
  auto d = kagami::modules::parse_transport_config(
      json{{"top_n_pods", 3}, {"hooks", "tracepoint"}, {"top_n_drops", 9}});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->top_n_pods, 3u);
  EXPECT_EQ(d->top_n_drops, 9u);
  EXPECT_EQ(d->hooks, "tracepoint");
}

TEST(TransportConfig, BadValuesNameTheKey) {
  struct Case {
    json in;
    std::string want;
  } cases[] = {
      {json{{"top_n_pods", 0}}, "transport.top_n_pods: must be an integer in 1..10000"},
      {json{{"top_n_pods", "ten"}}, "transport.top_n_pods"},
      {json{{"hooks", "fentry"}}, "transport.hooks: must be one of auto, tp_btf, tracepoint (got \"fentry\")"},
      {json{{"cgroup_root", "relative/path"}}, "transport.cgroup_root: must be an absolute path"},
      {json{{"cgroup_root", 5}}, "transport.cgroup_root: must be a string (got 5)"},
      {json{{"node", "n7"}}, "transport.node: unknown key"},
      {json{{"top_n_podz", 5}}, "transport.top_n_podz: unknown key"},
      {json::array(), "transport: the section must be a mapping"},
  };
  for (const auto& c : cases) {
    auto r = kagami::modules::parse_transport_config(c.in);
    ASSERT_FALSE(r) << c.in.dump();
    EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
  }
}

TEST(TransportConfig, HookChoiceFollowsTheProbe) {
  auto a = kagami::modules::choose_transport_hooks("auto", fixed(true));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->hooks, TransportHooks::TpBtf);
  auto b = kagami::modules::choose_transport_hooks("auto", fixed(false));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->hooks, TransportHooks::Tracepoint);
  EXPECT_NE(b->reason.find("tp_btf unavailable"), std::string::npos);
  auto c = kagami::modules::choose_transport_hooks("tracepoint", fixed(true));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->hooks, TransportHooks::Tracepoint);
  // An explicit tp_btf on a kernel without it is an error, not a silent fallback.
  auto d = kagami::modules::choose_transport_hooks("tp_btf", fixed(false));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("refuses tp_btf"), std::string::npos);
}

TEST(TransportConfig, LoadRequestNamesEveryHook) {
  auto req = kagami::modules::transport_load_request({TransportHooks::Tracepoint, ""}, "/sys/fs/cgroup/unified");
  std::vector<std::string> got;
  for (const auto& a : req.attach) got.push_back(a.to_string());
  std::vector<std::string> want = {
      "cgroup:/sys/fs/cgroup/unified:ingress@transport_cg_ingress",
      "cgroup:/sys/fs/cgroup/unified:egress@transport_cg_egress",
      "tracepoint:skb/kfree_skb@transport_kfree_skb",
      "tracepoint:tcp/tcp_retransmit_skb@transport_tcp_retransmit",
      "tracepoint:tcp/tcp_send_reset@transport_tcp_send_reset",
      "tracepoint:tcp/tcp_receive_reset@transport_tcp_receive_reset",
      "tracepoint:sock/inet_sock_set_state@transport_sock_set_state",
      "tracepoint:tcp/tcp_probe@transport_tcp_probe",
  };
  EXPECT_EQ(got, want);
  // Every spec survives the operator-facing parser unchanged.
  for (const auto& s : got) {
    auto p = kagami::core::AttachPoint::parse(s);
    ASSERT_TRUE(p) << s << ": " << p.error().message;
    EXPECT_EQ(p->to_string(), s);
  }
  auto btf = kagami::modules::transport_load_request({TransportHooks::TpBtf, ""}, "/sys/fs/cgroup/unified");
  EXPECT_EQ(btf.attach[2].to_string(), "tp_btf:kfree_skb@transport_kfree_skb");
  EXPECT_EQ(btf.attach[7].to_string(), "tp_btf:tcp_probe@transport_tcp_probe");
  EXPECT_NE(btf.source.bytes, req.source.bytes);
  EXPECT_GT(btf.source.bytes.size(), 1000u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(btf.source.bytes.data()) + 1, 3), "ELF");
}

TEST(TransportConfig, PlanRejectsARootWithoutCgroupV2) {
  TransportModule m(fixed(true));
  auto r = m.plan(json{{"cgroup_root", "/tmp"}}, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a cgroup v2 mount"), std::string::npos) << r.error().message;
  EXPECT_EQ(m.name(), "transport");
  EXPECT_NE(r.error().message.find("/tmp/unified"), std::string::npos) << r.error().message;
  bool tp_btf_optional = false;
  for (const auto& n : m.needs())
    if (n.feature == "tp_btf") tp_btf_optional = !n.required && !n.fallback.empty();
  EXPECT_TRUE(tp_btf_optional);
}

// The real probe on this kernel, resolved as the agent resolves it: tp_btf
// attaches here, so auto picks it, and forcing the fallback still plans.
TEST(TransportConfig, RealProbePicksTpBtfHere) {
  KAGAMI_REQUIRE_ROOT();
  TransportModule m;
  kagami::core::ModuleContext ctx;
  kagami::core::ProbeReport probed;
  for (const auto& n : m.needs()) probed.features.push_back(kagami::core::probe_feature(n.feature));
  ctx.features = kagami::core::resolve(m.needs(), probed);
  auto r = m.plan(json::object(), ctx);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.hook_choice().hooks, TransportHooks::TpBtf) << m.hook_choice().reason;
  EXPECT_EQ(r->front().source.label, "builtin:transport.bpf.o");
  auto t = m.plan(json{{"hooks", "tracepoint"}}, ctx);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(m.hook_choice().hooks, TransportHooks::Tracepoint);
  EXPECT_EQ(t->front().source.label, "builtin:transport_tp.bpf.o");
}

// ---- through the program manager ----------------------------------------------

class TransportModulePm : public ::testing::TestWithParam<TransportHooks> {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    pin_root_ = kagami::test::fresh_pin_root("transport");
    kagami::core::ManagerOptions o;
    o.pin_root = pin_root_;
    auto m = kagami::core::ProgramManager::create(o);
    ASSERT_TRUE(m) << m.error().message;
    pm_ = std::move(*m);
    cgroup_ = cg_root() + "/kagami-test-" + std::to_string(getpid()) + "-transport-pm";
    ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << cgroup_;
  }
  void TearDown() override {
    if (pm_) {
      for (const auto& p : pm_->list()) EXPECT_TRUE(pm_->unload(p.name));
      pm_.reset();
    }
    std::error_code ec;
    if (!pin_root_.empty()) std::filesystem::remove_all(pin_root_, ec);
    if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
  }
  std::string pin_root_, cgroup_;
  std::unique_ptr<kagami::core::ProgramManager> pm_;
};

TEST_P(TransportModulePm, CollectsTrafficOfAWorkloadWithNodeLabel) {
  const bool btf = GetParam() == TransportHooks::TpBtf;
  TransportModule mod(fixed(btf));  // the probe's answer, forced: tests the fallback here too
  kagami::core::ModuleContext ctx;
  ctx.node = "node-a";
  auto reqs = mod.plan(json::object(), ctx);
  ASSERT_TRUE(reqs) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 1u);
  EXPECT_EQ(mod.hook_choice().hooks, GetParam());
  auto info = pm_->load(reqs->front());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->attachments.size(), 8u);

  kagami::test::TestNetwork net;
  auto h = net.add_host();
  ASSERT_TRUE(h) << h.error().message;
  constexpr int kN = 13;
  pid_t pid = ::fork();
  if (pid == 0) {  // a socket takes the cgroup of the process that creates it
    std::ofstream(cgroup_ + "/cgroup.procs") << 0;
    _exit(kagami::test::send_udp(h->peer_ip, 9, std::string(72, 'q'), kN) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  auto fams = mod.collect(*pm_);
  ASSERT_TRUE(fams) << fams.error().message;
  const std::string rel = cgroup_.substr(cg_root().size());
  double packets = -1, bytes = -1, hooks_info = 0;
  for (const auto& f : *fams) {
    EXPECT_EQ(f.name.rfind("kagami_transport_", 0), 0u) << f.name;
    for (const auto& s : f.samples) {
      EXPECT_EQ(s.labels.at("node"), "node-a") << f.name;
      if (f.name == "kagami_transport_hooks_info" && s.labels.at("hooks") == (btf ? "tp_btf" : "tracepoint"))
        hooks_info = s.value;
      if (!s.labels.count("workload") || s.labels.at("workload") != rel) continue;
      if (s.labels.at("direction") != "egress" || s.labels.at("protocol") != "udp") continue;
      if (f.name == "kagami_transport_packets_total") packets = s.value;
      if (f.name == "kagami_transport_bytes_total") bytes = s.value;
    }
  }
  EXPECT_EQ(packets, kN);
  EXPECT_EQ(bytes, kN * (72 + 28));
  EXPECT_EQ(hooks_info, 1);

  auto snap = mod.snapshot(*pm_);
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ((*snap)["hooks"]["flavour"], btf ? "tp_btf" : "tracepoint");
  EXPECT_EQ((*snap)["hooks"]["attach"].size(), 8u);
  EXPECT_EQ((*snap)["node"], "node-a");
  EXPECT_GT((*snap)["hook_runs"]["cgroup_egress"].get<uint64_t>(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Hooks, TransportModulePm, ::testing::Values(TransportHooks::TpBtf, TransportHooks::Tracepoint),
                         [](const auto& i) { return std::string(kagami::modules::to_string(i.param)); });

}  // namespace
