// Stacked VLAN tags through obs.bpf.o under BPF_PROG_TEST_RUN. Carrier
// networks stack QinQ further than two tags and tshark decodes any depth;
// the parser accepts up to PARSE_MAX_VLAN (4) tags and counts the frame as
// its inner protocol, and reports a fifth as malformed (vlan_too_many_tags).
// The TC programs, the XDP program and the batched replay program share the
// parser; all three are checked, the replay one being the one at the
// verifier's stack limit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "bpf/test_run.h"
#include "modules/obs/obs_object.h"
#include "replay/replay.h"
#include "support/netns.h"
#include "support/packet_builder.h"
#include "support/pcap_writer.h"

namespace {

using kagami::obs::ObsObject;
using namespace kagami::test;
using nlohmann::json;

constexpr uint32_t kTeid = 0x77;

// An N3 GTP-U T-PDU behind `tags` VLAN tags: an 802.1ad S-tag outermost,
// then alternating 0x9100 / 0x8100 as carriers stack them.
std::vector<uint8_t> tagged_gtpu(int tags) {
  PacketBuilder b;
  b.eth();
  for (int i = 0; i < tags; i++) {
    const uint16_t tpid = i == 0 ? 0x88a8 : (i + 1 == tags ? 0x8100 : 0x9100);
    b.vlan(static_cast<uint16_t>(100 + i), tpid);
  }
  return b.ipv4("192.168.1.10", "192.168.1.20")
      .udp(2152, 2152)
      .gtpu(kGtpTpdu, kTeid, {})
      .ipv4("10.45.0.2", "8.8.8.8")
      .udp(1000, 53)
      .payload(16)
      .build();
}

class ObsVlan : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    auto o = ObsObject::open(/*replay_mode=*/true);
    ASSERT_TRUE(o) << o.error().message;
    obj_ = std::move(*o);
  }

  void run_tc(const std::vector<uint8_t>& f) {
    kagami::bpf::TestRunInput in;
    in.packet = f;
    in.set_skb_ctx = true;
    in.cb[0] = static_cast<uint32_t>(f.size());
    in.tstamp_ns = 1;
    auto r = kagami::bpf::test_run_skb(obj_->tc_ingress_fd(), in);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->retval, 0u) << "TC program must always return TC_ACT_OK";
  }

  void run_xdp(const std::vector<uint8_t>& f) {
    kagami::bpf::TestRunInput in;
    in.packet = f;
    auto r = kagami::bpf::test_run_xdp(obj_->xdp_fd(), in);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->retval, 2u) << "XDP program must always return XDP_PASS";
  }

  json counters() {
    auto c = obj_->counters();
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : json{};
  }

  std::unique_ptr<ObsObject> obj_;
};

TEST_F(ObsVlan, ThreeAndFourStackedTagsCountAsGtpu) {
  run_tc(tagged_gtpu(3));
  run_tc(tagged_gtpu(4));
  run_xdp(tagged_gtpu(3));
  run_xdp(tagged_gtpu(4));
  json c = counters();
  EXPECT_EQ(c["gtpu"]["packets"], 4);
  EXPECT_EQ(c["gtpu"]["by_teid"]["0x00000077"]["packets"], 4);
  EXPECT_EQ(c["gtpu"]["inner_ipv4"], 4);
  EXPECT_EQ(c.value("malformed_total", -1), 0) << c["malformed"].dump();
  EXPECT_TRUE(c["malformed"].empty()) << c["malformed"].dump();
}

TEST_F(ObsVlan, FifthTagIsMalformedTooManyTags) {
  run_tc(tagged_gtpu(5));
  run_xdp(tagged_gtpu(5));
  json c = counters();
  EXPECT_EQ(c["malformed"].value("vlan_too_many_tags", 0), 2) << c["malformed"].dump();
  EXPECT_EQ(c.value("malformed_total", -1), 2);
  EXPECT_EQ(c["gtpu"].value("packets", -1), 0) << "a frame beyond the tag bound must not be counted as GTP-U";
}

TEST_F(ObsVlan, TruncatedFourthTagIsVlanTruncated) {
  auto f = tagged_gtpu(4);
  f.resize(14 + 3 * 4 + 2);  // Ethernet, three whole tags, half of the fourth
  run_xdp(f);
  json c = counters();
  EXPECT_EQ(c["malformed"].value("vlan_truncated", 0), 1) << c["malformed"].dump();
  EXPECT_EQ(c.value("malformed_total", -1), 1);
}

// The batched replay program (obs_replay, `kagami replay`) runs the same
// parser from a deeper call chain; a capture of 3-, 4- and 5-tag frames
// counts like the single-frame runs.
TEST(ObsVlanReplay, CaptureWithStackedTagsReplaysAsGtpu) {
  KAGAMI_REQUIRE_ROOT();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kagami-vlan-" + std::to_string(::getpid()) + ".pcap"))
                               .string();
  struct Remove {
    std::string p;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  } remove{path};
  auto w = write_file(path, make_pcap(kLinkEthernet, {{tagged_gtpu(3)}, {tagged_gtpu(4)}, {tagged_gtpu(5)}}));
  ASSERT_TRUE(w) << w.error().message;
  auto rep = kagami::replay::run({path, {}});
  ASSERT_TRUE(rep) << rep.error().message;
  const json& r = *rep;
  EXPECT_EQ(r["replayed_frames"], 3);
  EXPECT_EQ(r["gtpu"]["packets"], 2);
  EXPECT_EQ(r["gtpu"]["by_teid"]["0x00000077"]["packets"], 2);
  EXPECT_EQ(r["malformed"].value("vlan_too_many_tags", 0), 1) << r["malformed"].dump();
  EXPECT_EQ(r.value("malformed_total", -1), 1);
}

}  // namespace
