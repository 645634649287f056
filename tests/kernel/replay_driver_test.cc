// The replay driver in the kernel: crafted captures (tests/support
// pcap_writer + packet_builder) through BPF_PROG_TEST_RUN, checking what the
// driver promises: every frame replayed or counted as skipped, frames above
// the skb test-run limit cut (and counted) rather than failed, and the
// __sk_buff context carrying the capture's frame length (cb[0]) and timestamp
// (tstamp) into the program.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "modules/obs/obs_object.h"
#include "platform.skel.h"
#include "replay/driver.h"
#include "replay/pcap_reader.h"
#include "replay/replay.h"
#include "support/netns.h"
#include "support/packet_builder.h"
#include "support/pcap_writer.h"

namespace {

namespace fs = std::filesystem;
using namespace kagami;
using test::PacketBuilder;
using test::PcapRecord;

std::vector<uint8_t> gtpu_frame(size_t payload, uint32_t teid = 0x77) {
  return PacketBuilder()
      .eth()
      .ipv4("192.168.1.1", "192.168.1.2")
      .udp(2152, 2152)
      .gtpu(test::kGtpTpdu, teid)
      .ipv4("10.45.0.2", "8.8.8.8")
      .udp(40000, 53)
      .payload(payload)
      .build();
}

class TempCapture {
 public:
  explicit TempCapture(const std::vector<uint8_t>& bytes) {
    path_ = (fs::temp_directory_path() / ("kagami-replay-drv-" + std::to_string(::getpid()) + "-" +
                                          std::to_string(n_++) + ".pcap"))
                .string();
    auto w = test::write_file(path_, bytes);
    EXPECT_TRUE(w) << w.error().message;
  }
  ~TempCapture() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  static inline int n_ = 0;
  std::string path_;
};

TEST(ReplayDriver, EveryFrameReplayedOrSkippedAndBigFramesCut) {
  KAGAMI_REQUIRE_ROOT();
  platform_bpf* skel = platform_bpf__open_and_load();
  ASSERT_NE(skel, nullptr);
  std::vector<PcapRecord> recs = {{gtpu_frame(100)},
                                  {gtpu_frame(replay::skb_test_run_max_bytes() + 500)},  // jumbo
                                  {std::vector<uint8_t>(8, 0)}};                          // runt
  TempCapture cap(test::make_pcap(test::kLinkEthernet, recs));
  auto r = replay::PcapReader::open(cap.path());
  ASSERT_TRUE(r) << r.error().message;
  auto st = replay::replay_frames(**r, bpf_program__fd(skel->progs.empty_tc));
  platform_bpf__destroy(skel);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->total_frames, 3u);
  EXPECT_EQ(st->replayed_frames, 2u);
  EXPECT_EQ(st->cut_frames, 1u);
  EXPECT_EQ(st->skipped.at(replay::kSkipShorterThanLinkHeader), 1u);
  EXPECT_EQ(st->verdicts.at(0), 2u);  // TC_ACT_OK from the empty program
  EXPECT_EQ(st->link_type, "EN10MB");
}

// cb[0]: a snapped frame (caplen 150 of 5000 bytes on the wire) and a cut
// jumbo frame are counted by the obs program with their full wire lengths.
TEST(ReplayDriver, WireLengthReachesTheProgramThroughCb0) {
  KAGAMI_REQUIRE_ROOT();
  auto big = gtpu_frame(replay::skb_test_run_max_bytes() + 500);
  auto small = gtpu_frame(100);
  std::vector<uint8_t> snapped(small.begin(), small.end());
  TempCapture cap(test::make_pcap(test::kLinkEthernet, {{snapped, 5000}, {big}}));
  auto rep = replay::run({cap.path(), {}});
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ((*rep)["snapped_frames"], 1);
  EXPECT_EQ((*rep)["cut_frames"], 1);
  EXPECT_EQ((*rep)["gtpu"]["packets"], 2);
  EXPECT_EQ((*rep)["gtpu"]["frame_bytes"], 5000 + big.size());
  EXPECT_EQ((*rep)["gtpu"]["by_teid"]["0x00000077"]["frame_bytes"], 5000 + big.size());
}

// tstamp: the PFCP response latency is computed from the capture's
// timestamps (5 ms apart), not from when replay ran the frames.
TEST(ReplayDriver, CaptureTimestampReachesTheProgramThroughTstamp) {
  KAGAMI_REQUIRE_ROOT();
  auto req = PacketBuilder()
                 .eth()
                 .ipv4("192.168.2.1", "192.168.2.2")
                 .udp(8805, 8805)
                 .pfcp(50, 7, {.seid = 0, .ies = {test::pfcp_node_id_ipv4("192.168.2.1")}})
                 .build();
  auto resp = PacketBuilder()
                  .eth()
                  .ipv4("192.168.2.2", "192.168.2.1")
                  .udp(8805, 8805)
                  .pfcp(51, 7, {.seid = 1, .ies = {test::pfcp_cause(1)}})
                  .build();
  const uint64_t t0 = 1'700'000'000'000'000'000ull;
  TempCapture cap(test::make_pcap(test::kLinkEthernet, {{req, 0, t0}, {resp, 0, t0 + 5'000'000}}, /*ns=*/true));
  auto rep = replay::run({cap.path(), {}});
  ASSERT_TRUE(rep) << rep.error().message;
  const auto& p = (*rep)["pfcp"];
  EXPECT_EQ(p["messages"], 2);
  ASSERT_TRUE(p["response_latency"].contains("51")) << p.dump();
  EXPECT_EQ(p["response_latency"]["51"]["count"], 1);
  EXPECT_EQ(p["response_latency"]["51"]["sum_ns"], 5'000'000);
}

TEST(ReplayDriver, DamagedCaptureIsAnErrorNamingTheFrame) {
  KAGAMI_REQUIRE_ROOT();
  auto bytes = test::make_pcap(test::kLinkEthernet, {{gtpu_frame(100)}, {gtpu_frame(100)}});
  bytes.resize(bytes.size() - 20);
  TempCapture cap(bytes);
  auto rep = replay::run({cap.path(), {}});
  ASSERT_FALSE(rep);
  EXPECT_NE(rep.error().message.find("after frame 1"), std::string::npos) << rep.error().message;
  EXPECT_NE(rep.error().message.find(cap.path()), std::string::npos) << rep.error().message;
}

}  // namespace
