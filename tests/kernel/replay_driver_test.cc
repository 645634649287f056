// The replay driver in the kernel: crafted captures (tests/support
// pcap_writer + packet_builder) through BPF_PROG_TEST_RUN, checking what the
// driver promises: every frame replayed or counted as skipped, frames above
// the skb test-run limit cut (and counted) rather than failed, and the
// __sk_buff context carrying the capture's frame length (cb[0]) and timestamp
// (tstamp) into the program. For batches (obs_replay): the same counts as
// one frame per run of obs_tc_ingress, batches split where they must, and a
// damaged batch counted rather than misread.
#include <gtest/gtest.h>

#include <linux/types.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "bpf/test_run.h"
#include "modules/obs/abi.h"
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

// The batch path and the single-frame TC path count the same: 300 frames
// of every kind the handlers take (GTP-U with and without a PDU Session
// Container, PFCP request/response pairs, SCTP, TCP, IPv6, a jumbo and a
// runt), replayed both ways into two fresh objects.
TEST(ReplayBatches, SameCountsAsOneFramePerRunAndSplitsBatches) {
  KAGAMI_REQUIRE_ROOT();
  std::vector<PcapRecord> recs;
  uint64_t ts = 1'700'000'000'000'000'000ull;
  for (int i = 0; i < 50; i++) {
    recs.push_back({gtpu_frame(60 + i * 7, 0x100 + i % 5), 0, ts += 1000});
    recs.push_back({PacketBuilder()
                        .eth()
                        .ipv4("192.168.1.1", "192.168.1.2")
                        .udp(2152, 2152)
                        .gtpu(test::kGtpTpdu, 0x200 + i % 3, {.ext = {test::pdu_session_container(1, 9)}})
                        .ipv4("10.45.0.2", "8.8.8.8")
                        .udp(40000, 53)
                        .payload(40)
                        .build(),
                    0, ts += 1000});
    // One SMF, two UPFs, the same sequence numbers towards both: each
    // response pairs with its own peer's request.
    const char* upf = i % 2 ? "192.168.3.2" : "192.168.2.2";
    recs.push_back({PacketBuilder()
                        .eth()
                        .ipv4("192.168.2.1", upf)
                        .udp(8805, 8805)
                        .pfcp(50, 100 + i / 2, {.seid = 0, .ies = {test::pfcp_node_id_ipv4("192.168.2.1")}})
                        .build(),
                    0, ts += 1000});
    recs.push_back({PacketBuilder()
                        .eth()
                        .ipv4(upf, "192.168.2.1")
                        .udp(8805, 8805)
                        .pfcp(51, 100 + i / 2, {.seid = 1, .ies = {test::pfcp_cause(i % 7 ? 1 : 64)}})
                        .build(),
                    0, ts += 2'000'000 + 1000 * i});
    recs.push_back({PacketBuilder()
                        .eth()
                        .ipv6("2001:db8::1", "2001:db8::2")
                        .ipv6_ext(0)
                        .tcp(1234, 80)
                        .payload(i)
                        .build(),
                    0, ts += 1000});
    recs.push_back({PacketBuilder()
                        .eth()
                        .ipv4("10.0.0.1", "10.0.0.2")
                        .sctp(38412, 38412, 7, {test::sctp_data(1000 + i % 40, 60, std::vector<uint8_t>(20, 1))})
                        .build(),
                    0, ts += 1000});
  }
  recs.push_back({gtpu_frame(5000)});           // cut
  recs.push_back({std::vector<uint8_t>(8, 0)});  // runt: skipped
  TempCapture cap(test::make_pcap(test::kLinkEthernet, recs, /*ns=*/true));

  auto batched = obs::ObsObject::open(true, obs::ObsObject::Programs::ReplayOnly);
  ASSERT_TRUE(batched) << batched.error().message;
  auto r1 = replay::PcapReader::open(cap.path());
  ASSERT_TRUE(r1) << r1.error().message;
  auto st1 = replay::replay_batches(**r1, (*batched)->replay_fd());
  ASSERT_TRUE(st1) << st1.error().message;
  EXPECT_EQ(st1->replayed_frames, recs.size() - 1);
  EXPECT_EQ(st1->cut_frames, 1u);
  EXPECT_GT(st1->runs, 4u);  // 301 frames do not fit in one page
  EXPECT_LE(st1->runs, st1->replayed_frames / 2);
  EXPECT_EQ(st1->verdicts.at(2), st1->replayed_frames);  // XDP_PASS

  auto single = obs::ObsObject::open(true, obs::ObsObject::Programs::TcIngressOnly);
  ASSERT_TRUE(single) << single.error().message;
  auto r2 = replay::PcapReader::open(cap.path());
  ASSERT_TRUE(r2) << r2.error().message;
  auto st2 = replay::replay_frames(**r2, (*single)->tc_ingress_fd());
  ASSERT_TRUE(st2) << st2.error().message;
  EXPECT_EQ(st2->replayed_frames, st1->replayed_frames);

  auto j1 = (*batched)->counters();
  auto j2 = (*single)->counters();
  ASSERT_TRUE(j1 && j2);
  // The interface list differs by design (ifindex of lo for XDP test runs,
  // 1 for skb ones is the same device, but the XDP path sees the frame
  // as cut to a batch's limit): compare everything the handlers count.
  for (const char* k : {"gtpu", "pfcp", "sctp", "malformed", "malformed_total"})
    EXPECT_EQ((*j1)[k], (*j2)[k]) << k << "\nbatches: " << (*j1)[k].dump() << "\nsingle: " << (*j2)[k].dump();
  EXPECT_EQ((*j1)["gtpu"]["packets"], 101);
  EXPECT_EQ((*j1)["pfcp"]["messages"], 100);
  EXPECT_EQ((*j1)["sctp"]["data_chunks"], 50);
  EXPECT_EQ((*j1)["pfcp"]["responses_unmatched"], 0);
}

// A batch is input like any other: records that run past the buffer end the
// batch and are counted, never read past; a buffer without the magic (say,
// obs_replay attached to an interface by mistake) is passed untouched.
TEST(ReplayBatches, DamagedBatchIsCountedAndForeignPacketsPass) {
  KAGAMI_REQUIRE_ROOT();
  auto obj = obs::ObsObject::open(true, obs::ObsObject::Programs::ReplayOnly);
  ASSERT_TRUE(obj) << obj.error().message;
  auto frame = gtpu_frame(100);
  auto batch = [&](uint32_t count, uint16_t cap_len) {
    std::vector<uint8_t> b(sizeof(kg_replay_batch) + sizeof(kg_replay_rec) + frame.size());
    kg_replay_batch h{KG_REPLAY_MAGIC, count};
    kg_replay_rec rec{};
    rec.wire_len = static_cast<__u32>(frame.size());
    rec.cap_len = cap_len;
    std::memcpy(b.data(), &h, sizeof(h));
    std::memcpy(b.data() + sizeof(h), &rec, sizeof(rec));
    std::memcpy(b.data() + sizeof(h) + sizeof(rec), frame.data(), frame.size());
    return b;
  };
  auto run = [&](const std::vector<uint8_t>& b) {
    bpf::TestRunInput in;
    in.packet = b;
    auto r = bpf::test_run_xdp((*obj)->replay_fd(), in);
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->retval : 0u;
  };
  EXPECT_EQ(run(batch(1, static_cast<uint16_t>(frame.size()))), 2u);       // good
  EXPECT_EQ(run(batch(2, static_cast<uint16_t>(frame.size()))), 2u);       // 2nd record missing
  EXPECT_EQ(run(batch(1, static_cast<uint16_t>(frame.size() + 900))), 2u); // cap_len past the end
  EXPECT_EQ(run(batch(1, 0)), 2u);                                          // empty frame
  EXPECT_EQ(run(frame), 2u);                                                // no magic: a plain packet
  auto snap = (*obj)->snapshot();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->total(OBS_CTR_PACKETS), 2u);  // the good batch, and the first record of the 2nd
  EXPECT_EQ(snap->total(OBS_CTR_GTPU_PACKETS), 2u);
  EXPECT_EQ(snap->total(OBS_CTR_REPLAY_BAD_BATCH), 3u);
}

}  // namespace
