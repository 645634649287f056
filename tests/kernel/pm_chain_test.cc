// Program manager: several programs on one XDP interface (the chain) and on
// one TC hook (priorities), each listed with its order.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gmock/gmock.h>

#include "bpf/hooks.h"
#include "pm_fixture.h"

using ::testing::HasSubstr;

namespace kagami::test {
namespace {

class PmChain : public PmTest {
 protected:
  uint64_t chain_packets(const std::string& name) { return read_u64(name, "packets", 0); }
  void set_drop_port(const std::string& name, uint32_t port) {
    auto fd = pm_->map_fd(name, "cfg");
    ASSERT_TRUE(fd);
    uint32_t k = 0;
    ASSERT_EQ(bpf_map_update_elem(fd->get(), &k, &port, BPF_ANY), 0);
  }
  int slot_of(const std::string& name) {
    auto g = pm_->get(name);
    if (!g || g->attachments.empty()) return -1;
    const auto& m = g->attachments[0].mechanism;
    if (m.rfind("xdp-chain[", 0) != 0) return -1;
    return std::stoi(m.substr(10));
  }
};

TEST_F(PmChain, TwoChainAwareXdpProgramsRunInOrder) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string xdp = "xdp:" + h->host_if;
  auto b = pm_->load(request("second", "chain_count", {xdp + "#20"}));
  ASSERT_TRUE(b) << b.error().message;
  auto a = pm_->load(request("first", "chain_count", {xdp + "#10"}));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_THAT(a->attachments[0].mechanism, HasSubstr("xdp-chain["));
  EXPECT_LT(slot_of("first"), slot_of("second")) << "order 10 runs before order 20";
  EXPECT_EQ(a->attachments[0].point.order, 10);

  send_from_ns(*h, 9100, 6);
  EXPECT_EQ(chain_packets("first"), 6u);
  EXPECT_EQ(chain_packets("second"), 6u);

  // First drops port 9101: the second must never see those packets.
  set_drop_port("first", 9101);
  send_from_ns(*h, 9101, 4);
  EXPECT_EQ(chain_packets("first"), 10u);
  EXPECT_EQ(chain_packets("second"), 6u);

  // Replacing a member swaps its slot in place; its counter carries over.
  auto r = pm_->replace("second", request("second", "chain_count", {}));
  ASSERT_TRUE(r) << r.error().message;
  send_from_ns(*h, 9100, 2);
  EXPECT_EQ(chain_packets("second"), 8u);

  // Removing one keeps the other running.
  ASSERT_TRUE(pm_->unload("first"));
  send_from_ns(*h, 9101, 3);
  EXPECT_EQ(chain_packets("second"), 11u);
  auto id = bpf::xdp_query(h->host_ifindex);
  ASSERT_TRUE(id);
  EXPECT_NE(*id, 0u) << "chain root still attached";
  ASSERT_TRUE(pm_->unload("second"));
  id = bpf::xdp_query(h->host_ifindex);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 0u) << "empty chain removed from the interface";
  EXPECT_FALSE(std::filesystem::exists(pin_root_ + "/_xdp_chain"));
}

TEST_F(PmChain, ChainSurvivesRestartAndPlainProgramsEndIt) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string xdp = "xdp:" + h->host_if;
  ASSERT_TRUE(pm_->load(request("aware", "chain_count", {xdp + "#10"})));
  // A plain (not chain-aware) program joins the existing chain after it.
  auto p = pm_->load(request("plain", "count_v1", {xdp + "#30"}));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_THAT(p->attachments[0].mechanism, HasSubstr("xdp-chain["));
  restart();
  EXPECT_TRUE(pm_->get("aware")->adopted);
  send_from_ns(*h, 9102, 5);
  EXPECT_EQ(chain_packets("aware"), 5u);
  auto fd = pm_->map_fd("plain", "counts");
  ASSERT_TRUE(fd);
  uint32_t k = 9102;
  uint64_t v = 0;
  ASSERT_EQ(bpf_map_lookup_elem(fd->get(), &k, &v), 0);
  EXPECT_EQ(v, 5u);
  // Another chain-aware program after the plain one never runs (documented).
  ASSERT_TRUE(pm_->load(request("late", "chain_count", {xdp + "#40"})));
  send_from_ns(*h, 9102, 2);
  EXPECT_EQ(chain_packets("aware"), 7u);
  EXPECT_EQ(chain_packets("late"), 0u);
}

TEST_F(PmChain, PlainXdpProgramDoesNotShareItsInterface) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string xdp = "xdp:" + h->host_if;
  ASSERT_TRUE(pm_->load(request("plain", "count_v1", {xdp})));
  auto r = pm_->load(request("aware", "chain_count", {xdp}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("already runs program plain, which is not chain-aware"));
  auto r2 = pm_->load(request("plain2", "count_v2", {xdp}));
  ASSERT_FALSE(r2);
  EXPECT_THAT(r2.error().message, HasSubstr("not chain-aware"));
  send_from_ns(*h, 9103, 2);
  EXPECT_EQ(pm_->list().size(), 1u);
}

TEST_F(PmChain, TcPrioritiesOrderSeveralProgramsOnOneHook) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  const std::string tc = "tc:" + h->host_if + ":egress";
  auto b = pm_->load(request("late", "count_v1", {tc + "#20"}));
  ASSERT_TRUE(b) << b.error().message;
  auto a = pm_->load(request("early", "count_v2", {tc + "#10"}));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->attachments[0].mechanism, "tc-prio:10");
  EXPECT_EQ(b->attachments[0].mechanism, "tc-prio:20");
  ASSERT_TRUE(send_udp(h->peer_ip, 9104, "x", 9));
  EXPECT_EQ(read_u64("early", "counts", 9104), 9u);
  EXPECT_EQ(read_u64("late", "counts", 9104), 9u);
  ASSERT_TRUE(pm_->unload("early"));
  ASSERT_TRUE(send_udp(h->peer_ip, 9104, "x", 1));
  EXPECT_EQ(read_u64("late", "counts", 9104), 10u);
}

// The README's custom-program example (examples/xdp_counter.bpf.c) loads,
// shares the interface and counts per IP protocol.
TEST_F(PmChain, ReadmeExampleCountsPerProtocol) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto e = pm_->load(request("xdp-counter", "xdp_counter_example", {"xdp:" + h->host_if + "#10"}));
  ASSERT_TRUE(e) << e.error().message;
  ASSERT_TRUE(pm_->load(request("after", "chain_count", {"xdp:" + h->host_if + "#20"})));
  send_from_ns(*h, 9105, 4);
  auto fd = pm_->map_fd("xdp-counter", "proto_packets");
  ASSERT_TRUE(fd);
  const int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(ncpu);
  uint32_t udp = 17;
  ASSERT_EQ(bpf_map_lookup_elem(fd->get(), &udp, per_cpu.data()), 0);
  uint64_t sum = 0;
  for (auto v : per_cpu) sum += v;
  EXPECT_EQ(sum, 4u);
  EXPECT_EQ(chain_packets("after"), 4u) << "the example passes packets down the chain";
}

TEST_F(PmChain, ChainOfAVanishedInterfaceIsDroppedOnRestart) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(pm_->load(request("gone", "chain_count", {"xdp:" + h->host_if})));
  const std::string chain = pin_root_ + "/_xdp_chain/" + h->host_if;
  ASSERT_TRUE(std::filesystem::exists(chain + "/link"));
  ASSERT_EQ(system(("ip link del " + h->host_if).c_str()), 0);
  restart();
  EXPECT_FALSE(std::filesystem::exists(chain)) << "stale chain pins removed";
  auto u = pm_->unload("gone");
  EXPECT_TRUE(u) << u.error().message;
}

TEST_F(PmChain, FreplaceProbeAnswers) {
  // The kernel here refuses BPF_PROG_TYPE_EXT (EPERM), which is why the
  // chain uses tail calls; the probe must not crash and must say so.
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto l = pm_->load(request("p", "chain_count", {"xdp:" + h->host_if + "#10"}));
  ASSERT_TRUE(l) << l.error().message;
  auto fd = pm_->map_fd("p", "packets");
  ASSERT_TRUE(fd);
  const bool ext = [&] {
    Fd prog(bpf_obj_get((pin_root_ + "/p/progs/chain_count").c_str()));
    return prog.valid() && bpf::freplace_supported(prog.get());
  }();
  RecordProperty("freplace_supported", ext ? "yes" : "no");
  SUCCEED() << "freplace supported: " << ext;
}

}  // namespace
}  // namespace kagami::test
