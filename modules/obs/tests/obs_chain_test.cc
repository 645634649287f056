// obs on XDP shares its interfaces: obs_xdp is chain-aware, so a custom XDP
// program (here the chain_count test program, which drops one port) runs on
// the same interface after it, and obs on several XDP interfaces counts
// into one set of maps (one load per interface, share_maps_with).
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "kagami/abi/xdp_chain.h"
#include "kernel/pm_fixture.h"
#include "modules/obs/obs_module.h"

namespace kagami::test {
namespace {

using nlohmann::json;

class ObsChain : public PmTest {};

// UDP packets obs saw on one interface (the hosts' own ARP and IPv6
// neighbour traffic comes and goes on its own).
uint64_t packets_on(const json& snap, const std::string& ifname) {
  uint64_t n = 0;
  for (const auto& i : snap["packets"]["interfaces"])
    if (i["interface"] == ifname && i["protocol"] == "udp") n += i["packets"].get<uint64_t>();
  return n;
}

TEST_F(ObsChain, ObsAndACustomXdpProgramShareTwoInterfaces) {
  auto h1 = net_.add_host();
  ASSERT_TRUE(h1) << h1.error().message;
  auto h2 = net_.add_host();
  ASSERT_TRUE(h2) << h2.error().message;

  obs::ObsModule mod;
  core::ModuleContext ctx;
  ctx.node = "n";
  auto reqs = mod.plan(json{{"interfaces", {h1->host_if, h2->host_if}}, {"xdp", true}, {"direction", "ingress"}}, ctx);
  ASSERT_TRUE(reqs) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 2u);
  for (const auto& r : *reqs) {
    auto info = pm_->load(r);
    ASSERT_TRUE(info) << r.name << ": " << info.error().message;
    EXPECT_THAT(info->attachments[0].mechanism, ::testing::HasSubstr("xdp-chain[")) << r.name;
  }
  ASSERT_TRUE(mod.configure(*pm_));
  // A custom chain-aware program after obs on the first interface: it counts
  // and drops port 9101.
  auto custom = pm_->load(request("custom", "chain_count", {"xdp:" + h1->host_if + "#200"}));
  ASSERT_TRUE(custom) << custom.error().message;
  auto cfg = pm_->map_fd("custom", "cfg");
  ASSERT_TRUE(cfg);
  uint32_t k = 0, port = 9101;
  ASSERT_EQ(bpf_map_update_elem(cfg->get(), &k, &port, BPF_ANY), 0);

  auto before = mod.snapshot(*pm_);
  ASSERT_TRUE(before) << before.error().message;
  send_from_ns(*h1, 9100, 5);  // passes obs, then custom, then the stack
  send_from_ns(*h1, 9101, 3);  // passes obs, dropped by custom
  send_from_ns(*h2, 9100, 4);  // obs-xdp-2 on the second interface
  auto after = mod.snapshot(*pm_);
  ASSERT_TRUE(after) << after.error().message;

  // obs ran first on every packet of both interfaces, into the same maps.
  EXPECT_EQ(packets_on(*after, h1->host_if) - packets_on(*before, h1->host_if), 8u) << (*after)["packets"].dump();
  EXPECT_EQ(packets_on(*after, h2->host_if) - packets_on(*before, h2->host_if), 4u) << (*after)["packets"].dump();
  // The custom program ran after obs on the first interface: obs handed the
  // packets down the chain instead of ending it with XDP_PASS.
  EXPECT_EQ(read_u64("custom", "packets", 0), 8u);

  // The manager's "next slot" table sends each member straight to its
  // successor: root -> obs -> custom -> pass, with no probing of empty slots.
  {
    auto next = bpf::obj_get(pin_root_ + "/_xdp_chain/" + h1->host_if + "/next");
    ASSERT_TRUE(next) << next.error().message;
    auto slot_of = [&](const std::string& prog) {
      auto g = pm_->get(prog);
      const auto& m = g->attachments[0].mechanism;  // "xdp-chain[N]"
      return static_cast<uint32_t>(std::stoi(m.substr(10)));
    };
    const uint32_t obs_slot = slot_of("obs"), custom_slot = slot_of("custom");
    auto after = [&](int64_t slot) {
      uint32_t k = static_cast<uint32_t>(slot + 1), v = 0;
      EXPECT_TRUE(bpf::map_lookup(next->get(), &k, &v));
      return v;
    };
    EXPECT_EQ(after(-1), obs_slot + 1);
    EXPECT_EQ(after(obs_slot), custom_slot + 1);
    EXPECT_EQ(after(custom_slot), static_cast<uint32_t>(KAGAMI_XDP_CHAIN_NONE));
  }

  // The two obs loads hold one map, not two.
  auto a = pm_->get("obs"), b = pm_->get("obs-xdp-2");
  ASSERT_TRUE(a && b);
  uint32_t ida = 0, idb = 0;
  for (const auto& m : a->maps) if (m.name == OBS_MAP_COUNTERS) ida = m.id;
  for (const auto& m : b->maps) if (m.name == OBS_MAP_COUNTERS) idb = m.id;
  EXPECT_NE(ida, 0u);
  EXPECT_EQ(ida, idb);

  // Without the custom program obs ends the chain: the table says so, and
  // packets still pass (the stack answers nothing, but obs counts them).
  ASSERT_TRUE(pm_->unload("custom"));
  auto next = bpf::obj_get(pin_root_ + "/_xdp_chain/" + h1->host_if + "/next");
  ASSERT_TRUE(next);
  const uint32_t after_obs = static_cast<uint32_t>(std::stoi(pm_->get("obs")->attachments[0].mechanism.substr(10))) + 1;
  uint32_t v = 0;
  ASSERT_TRUE(bpf::map_lookup(next->get(), &after_obs, &v));
  EXPECT_EQ(v, static_cast<uint32_t>(KAGAMI_XDP_CHAIN_NONE));
  auto mid = mod.snapshot(*pm_);
  ASSERT_TRUE(mid);
  send_from_ns(*h1, 9101, 2);
  auto last = mod.snapshot(*pm_);
  ASSERT_TRUE(last);
  EXPECT_EQ(packets_on(*last, h1->host_if) - packets_on(*mid, h1->host_if), 2u);
}

// A load that names a program that is not there, or whose maps differ, is
// refused before anything is attached.
TEST_F(ObsChain, SharingMapsNeedsTheOwnerAndTheSameLayout) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  auto orphan = request("orphan", "chain_count", {"xdp:" + h->host_if});
  orphan.share_maps_with = "nobody";
  auto r = pm_->load(orphan);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, ::testing::HasSubstr("no program named nobody"));
  ASSERT_TRUE(pm_->load(request("count1", "count_v1", {"tc:" + h->host_if + ":egress"})));
  auto other = request("count4", "count_small", {"tc:" + h->host_if + ":ingress"});
  other.share_maps_with = "count1";
  r = pm_->load(other);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, ::testing::HasSubstr("differs"));
  EXPECT_FALSE(pm_->get("count4"));
}

}  // namespace
}  // namespace kagami::test
