// obs.bpf.o under BPF_PROG_TEST_RUN: crafted frames for every parse path,
// counted through ObsObject::counters() (the same JSON replay compares with
// tshark). Every program must return TC_ACT_OK / XDP_PASS for every input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bpf/kernel.h"
#include "bpf/test_run.h"
#include "modules/obs/obs_object.h"
#include "support/netns.h"
#include "support/packet_builder.h"

namespace {

using kagami::obs::ObsObject;
using namespace kagami::test;
using nlohmann::json;

class ObsKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    KAGAMI_REQUIRE_ROOT();
    auto o = ObsObject::open(/*replay_mode=*/true);
    ASSERT_TRUE(o) << o.error().message;
    obj_ = std::move(*o);
  }

  // Runs one frame through TC ingress (replay mode: cb[0] = frame length,
  // tstamp = ts) and checks the verdict.
  void run(const std::vector<uint8_t>& f, uint64_t ts_ns = 1, uint32_t frame_len = 0,
           bool egress = false) {
    kagami::bpf::TestRunInput in;
    in.packet = f;
    in.set_skb_ctx = true;
    in.cb[0] = frame_len ? frame_len : static_cast<uint32_t>(f.size());
    in.tstamp_ns = ts_ns;
    auto r = kagami::bpf::test_run_skb(egress ? obj_->tc_egress_fd() : obj_->tc_ingress_fd(), in);
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

PacketBuilder n3(uint16_t sport = 2152, uint16_t dport = 2152) {
  PacketBuilder b;
  b.eth().ipv4("192.168.1.10", "192.168.1.20").udp(sport, dport);
  return b;
}

PacketBuilder n4(const std::string& src, const std::string& dst) {
  PacketBuilder b;
  b.eth().ipv4(src, dst).udp(8805, 8805);
  return b;
}

TEST_F(ObsKernel, GtpuTpduCountedPerTeidWithTsharkKeys) {
  auto plain = n3().gtpu(kGtpTpdu, 0x1, {}).ipv4("10.45.0.2", "8.8.8.8").udp(1000, 53).payload(12).build();
  auto seq = n3().gtpu(kGtpTpdu, 0x1, {.seq = 9}).ipv4("10.45.0.2", "8.8.8.8").udp(1000, 53).payload(4).build();
  run(plain);
  run(seq);
  json g = counters()["gtpu"];
  EXPECT_EQ(g["packets"], 2);
  EXPECT_EQ(g["frame_bytes"], plain.size() + seq.size());
  // UDP payload = frame - 14 eth - 20 ip - 8 udp; GTP length = payload - 8.
  EXPECT_EQ(g["udp_payload_bytes"], plain.size() + seq.size() - 2 * 42);
  EXPECT_EQ(g["gtp_length_field_bytes"], plain.size() + seq.size() - 2 * 50);
  EXPECT_EQ(g["by_message_type"]["0xff"]["count"], 2);
  EXPECT_EQ(g["by_message_type"]["0xff"]["name"], "T-PDU");
  EXPECT_EQ(g["with_sequence_number"], 1);
  EXPECT_EQ(g["without_extension_header"], 2);
  EXPECT_EQ(g["distinct_teids"], 1);
  EXPECT_EQ(g["by_teid"]["0x00000001"]["packets"], 2);
  EXPECT_EQ(g["by_teid"]["0x00000001"]["frame_bytes"], plain.size() + seq.size());
  EXPECT_EQ(g["inner_ipv4"], 2);
  EXPECT_EQ(g["packets_where_gtp_length_plus_8_differs_from_udp_payload"], 0);
  EXPECT_TRUE(counters()["malformed"].empty()) << counters()["malformed"].dump();
}

TEST_F(ObsKernel, PfcpRequestResponseLatencyAndCause) {
  // Session Establishment: request CP -> UP at t=1 ms, response at t=1.5 ms.
  auto req = n4("10.0.0.1", "10.0.0.2").pfcp(50, 77, {.seid = 0, .ies = {pfcp_node_id_ipv4("10.0.0.1")}}).build();
  auto resp = n4("10.0.0.2", "10.0.0.1")
                  .pfcp(51, 77, {.seid = 0x1111, .ies = {pfcp_node_id_ipv4("10.0.0.2"), pfcp_cause(1)}})
                  .build();
  run(req, 1'000'000);
  run(resp, 1'500'000);
  json p = counters()["pfcp"];
  EXPECT_EQ(p["messages"], 2);
  EXPECT_EQ(p["by_msg_type"]["50"]["count"], 1);
  EXPECT_EQ(p["by_msg_type"]["51"]["count"], 1);
  EXPECT_EQ(p["by_msg_type"]["51"]["name"], "PFCP Session Establishment Response");
  EXPECT_EQ(p["cause_by_msg_type"]["51"]["causes"]["1"]["count"], 1);
  EXPECT_EQ(p["session_establishment_responses_accepted"], 1);
  EXPECT_EQ(p["sessions_established"], 1);
  EXPECT_EQ(p["response_latency"]["51"]["count"], 1);
  EXPECT_EQ(p["response_latency"]["51"]["sum_ns"], 500'000);
  // 500 us falls in [256, 512) us: the cumulative bucket le_512us holds it.
  EXPECT_EQ(p["response_latency"]["51"]["cumulative_buckets"]["le_512us"], 1);
  EXPECT_EQ(p["responses_unmatched"], 0);
  EXPECT_EQ(p["requests_pending"], 0);
}

TEST_F(ObsKernel, VlanQinqAndIpv6ExtensionHeadersReachGtpu) {
  auto inner = [](PacketBuilder b) {
    return b.udp(2152, 2152).gtpu(kGtpTpdu, 0x42, {}).ipv4("10.45.0.2", "1.1.1.1").payload(8).build();
  };
  run(inner(PacketBuilder().eth().vlan(100).ipv4("192.168.1.1", "192.168.1.2")));
  run(inner(PacketBuilder().eth().vlan(10, 0x88a8).vlan(20).ipv4("192.168.1.1", "192.168.1.2")));
  run(inner(PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").ipv6_ext(0).ipv6_ext(60, 1).ipv6_ext(43)));
  json c = counters();
  EXPECT_EQ(c["gtpu"]["packets"], 3);
  EXPECT_EQ(c["gtpu"]["by_teid"]["0x00000042"]["packets"], 3);
  EXPECT_TRUE(c["malformed"].empty()) << c["malformed"].dump();
}

TEST_F(ObsKernel, FifthVlanTagAndNinthIpv6ExtensionAreMalformed) {
  // Four tags are the bound (tests/kernel/obs_vlan_test.cc); a fifth is not.
  run(PacketBuilder().eth().vlan(1, 0x88a8).vlan(2).vlan(3).vlan(4).vlan(5).ipv4("1.1.1.1", "2.2.2.2").udp(1, 2).build());
  // Eight extension headers are the bound and still parse; nine do not.
  PacketBuilder eight, nine;
  eight.eth().ipv6("2001:db8::1", "2001:db8::2");
  nine.eth().ipv6("2001:db8::1", "2001:db8::2");
  for (int i = 0; i < 8; i++) eight.ipv6_ext(60);
  for (int i = 0; i < 9; i++) nine.ipv6_ext(60);
  run(eight.udp(2152, 2152).gtpu(kGtpEchoRequest, 0, {.seq = 1}).build());
  run(nine.udp(2152, 2152).gtpu(kGtpEchoRequest, 0, {.seq = 1}).build());
  json c = counters();
  EXPECT_EQ(c["malformed"]["vlan_too_many_tags"], 1);
  EXPECT_EQ(c["malformed"]["ipv6_ext_too_many"], 1);
  EXPECT_EQ(c["gtpu"]["echo_request"], 1);
  EXPECT_EQ(c["malformed_total"], 2);
}

TEST_F(ObsKernel, TruncatedAndBadHeadersEachHaveAReason) {
  auto eth_ip = [](size_t ip_bytes) {
    auto f = PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").udp(1000, 2000).payload(20).build();
    f.resize(14 + ip_bytes);
    return f;
  };
  // The kernel's skb test run rejects frames whose IP header is cut short
  // (EINVAL), so those two go through XDP, which shares the parser.
  run_xdp(eth_ip(10));                                                                   // ipv4_truncated
  run(PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2", {.ihl = 3}).payload(40).build());  // ipv4_bad_ihl
  run(PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2", {.total_length = 12}).payload(40).build());
  run(eth_ip(24));                                                                        // udp_truncated
  run(PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").udp(1000, 2000, 4).payload(8).build());
  auto tcp = PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").tcp(80, 1234).build();
  tcp.resize(14 + 20 + 10);
  run(tcp);                                                                               // tcp_truncated
  run(PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").tcp(80, 1234, 0x10, 2).payload(4).build());
  auto v6 = PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").udp(1, 2).build();
  v6.resize(14 + 30);
  run_xdp(v6);                                                                            // ipv6_truncated
  auto ext = PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").ipv6_ext(0, 4).udp(1, 2).build();
  ext.resize(14 + 40 + 16);
  run(ext);                                                                               // ipv6_ext_truncated
  // And well-formed TCP and UDP are not malformed.
  run(PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").tcp(80, 1234).payload(10).build());
  run(PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").udp(53, 1234).payload(10).build());
  json m = counters()["malformed"];
  for (const char* r : {"ipv4_truncated", "ipv4_bad_ihl", "ipv4_bad_total_length", "udp_truncated",
                        "udp_bad_length", "tcp_truncated", "tcp_bad_data_offset", "ipv6_truncated",
                        "ipv6_ext_truncated"})
    EXPECT_EQ(m[r], 1) << r << " in " << m.dump();
  EXPECT_EQ(m.size(), 9u) << m.dump();
  json t = counters()["packets"];
  EXPECT_EQ(t["packets"], 11);
}

TEST_F(ObsKernel, SctpEveryChunkDataPpidRetransmissionAndAbort) {
  std::vector<uint8_t> ngap(24, 0x00);
  auto bundle = PacketBuilder()
                    .eth()
                    .ipv4("10.0.0.1", "10.0.0.2")
                    .sctp(38412, 38412, 0xabcd,
                          {sctp_sack(99), sctp_data(100, 60, ngap), sctp_data(101, 60, ngap, 1),
                           sctp_data(102, 18, {1, 2, 3})})
                    .build();
  run(bundle);
  run(bundle);  // the same TSNs again: three retransmitted DATA chunks
  run(PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").sctp(38412, 38412, 0xabcd, {sctp_abort()}).build());
  json s = counters()["sctp"];
  EXPECT_EQ(s["packets"], 3);
  EXPECT_EQ(s["chunks"], 9);
  EXPECT_EQ(s["data_chunks"], 6);
  EXPECT_EQ(s["by_chunk_type"]["0"]["count"], 6);
  EXPECT_EQ(s["by_chunk_type"]["3"]["count"], 2);
  EXPECT_EQ(s["by_chunk_type"]["6"]["count"], 1);
  EXPECT_EQ(s["data_by_ppid"]["60"], 4);
  EXPECT_EQ(s["data_by_ppid"]["18"], 2);
  EXPECT_EQ(s["data_retransmitted"], 3);
  EXPECT_EQ(s["aborts"], 1);
  EXPECT_TRUE(counters()["malformed"].empty());
}

TEST_F(ObsKernel, SctpHostileChunksAreMalformedAndBounded) {
  auto sctp = [](std::vector<SctpChunk> ch) {
    return PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").sctp(1, 2, 3, std::move(ch)).build();
  };
  run(sctp({SctpChunk{4, 0, {0, 0, 0, 0}, uint16_t{0}}}));   // length 0: would never advance
  run(sctp({SctpChunk{4, 0, {0, 0, 0, 0}, uint16_t{400}}})); // length past the packet
  std::vector<SctpChunk> many(33, SctpChunk{4, 0, {}, {}});
  run(sctp(many));                                           // 33 > 32 chunks
  many.resize(32);
  run(sctp(many));                                           // exactly the bound: fine
  auto cut = sctp({});
  cut.resize(14 + 20 + 6);
  run(cut);                                                  // common header cut short
  json c = counters();
  EXPECT_EQ(c["malformed"]["sctp_chunk_bad_length"], 1);
  EXPECT_EQ(c["malformed"]["sctp_chunk_past_end"], 1);
  EXPECT_EQ(c["malformed"]["sctp_too_many_chunks"], 1);
  EXPECT_EQ(c["malformed"]["sctp_truncated"], 1);
  // 32 chunks of the too-many packet plus the 32 of the good one.
  EXPECT_EQ(c["sctp"]["by_chunk_type"]["4"]["count"], 64);
}

TEST_F(ObsKernel, PduSessionContainerGivesQfiAndPduTypePerDirection) {
  auto ul = n3().gtpu(kGtpTpdu, 0x10, {.ext = {pdu_session_container(1, 5)}}).ipv4("10.45.0.2", "8.8.8.8").payload(20).build();
  auto dl = n3().gtpu(kGtpTpdu, 0x20, {.seq = 3, .ext = {pdu_session_container(0, 9)}}).ipv6("2001:db8::1", "2001:db8::2").payload(20).build();
  run(ul);
  run(dl, 1, 0, /*egress=*/true);
  json g = counters()["gtpu"];
  EXPECT_EQ(g["with_extension_header"], 2);
  EXPECT_EQ(g["extension_header_types"]["0x85"]["count"], 2);
  EXPECT_EQ(g["extension_header_types"]["0x85"]["name"], "PDU Session container");
  EXPECT_EQ(g["pdu_session_container_type"]["0"]["count"], 1);
  EXPECT_EQ(g["pdu_session_container_type"]["1"]["count"], 1);
  EXPECT_EQ(g["qfi"], (json{{"5", 1}, {"9", 1}}));
  EXPECT_EQ(g["qfi_detail"]["5"]["ul"]["ingress"]["packets"], 1);
  EXPECT_EQ(g["qfi_detail"]["9"]["dl"]["egress"]["frame_bytes"], dl.size());
  EXPECT_EQ(g["by_teid"]["0x00000020"]["egress_packets"], 1);
  EXPECT_EQ(g["inner_ipv4"], 1);
  EXPECT_EQ(g["inner_ipv6"], 1);
  EXPECT_TRUE(counters()["malformed"].empty()) << counters()["malformed"].dump();
}

TEST_F(ObsKernel, EchoErrorIndicationAndEndMarker) {
  run(n3().gtpu(kGtpEchoRequest, 0, {.seq = 1}).build());
  run(n3().gtpu(kGtpEchoResponse, 0, {.seq = 1}).bytes({14, 0}).build());  // Recovery IE
  run(n3().gtpu(kGtpErrorIndication, 0, {.seq = 0}).bytes({16, 0, 0, 0, 7}).build());
  run(n3().gtpu(kGtpEndMarker, 0x77, {}).build());
  json g = counters()["gtpu"];
  EXPECT_EQ(g["echo_request"], 1);
  EXPECT_EQ(g["echo_response"], 1);
  EXPECT_EQ(g["error_indication"], 1);
  EXPECT_EQ(g["end_marker"], 1);
  EXPECT_EQ(g["by_message_type"]["0x01"]["count"], 1);
  EXPECT_EQ(g["by_message_type"]["0x1a"]["name"], "Error indication");
  EXPECT_EQ(g["by_message_type"]["0xfe"]["count"], 1);
  EXPECT_EQ(g["by_teid"]["0x00000000"]["packets"], 3);
  EXPECT_EQ(g["distinct_teids"], 2);
}

TEST_F(ObsKernel, HostileGtpuIsMalformedByReasonAndNeverStalls) {
  auto cut = n3().gtpu(kGtpTpdu, 1, {}).build();
  cut.resize(cut.size() - 3);
  run(cut);                                                                  // gtpu_truncated
  run(n3().gtpu(kGtpTpdu, 1, {.version = 2}).payload(8).build());            // gtpu_bad_version
  GtpExt zero{0xc0, {0, 0}, uint8_t{0}};
  run(n3().gtpu(kGtpTpdu, 2, {.ext = {zero}}).payload(8).build());           // gtpu_ext_bad_length
  std::vector<GtpExt> endless(9, GtpExt{0xc0, {0, 0}, {}});
  run(n3().gtpu(kGtpTpdu, 3, {.ext = endless}).payload(8).build());          // gtpu_ext_too_many
  GtpExt huge{0xc0, {0, 0}, uint8_t{200}};
  run(n3().gtpu(kGtpTpdu, 4, {.ext = {huge}}).payload(8).build());           // gtpu_ext_past_end
  run(n3().gtpu(kGtpTpdu, 5, {.length = 2096}).ipv4("1.1.1.1", "2.2.2.2").payload(8).build());  // mismatch
  run(n3().gtpu(kGtpTpdu, 6, {}).bytes({0x45, 0, 0, 0}).build());            // gtpu_inner_truncated
  json c = counters();
  for (const char* r : {"gtpu_truncated", "gtpu_bad_version", "gtpu_ext_bad_length", "gtpu_ext_too_many",
                        "gtpu_ext_past_end", "gtpu_length_mismatch", "gtpu_inner_truncated"})
    EXPECT_EQ(c["malformed"][r], 1) << r << " in " << c["malformed"].dump();
  // Like Wireshark, a valid mandatory header is counted even when what
  // follows is broken: every packet but the truncated and the GTPv2 one.
  EXPECT_EQ(c["gtpu"]["packets"], 5);
  EXPECT_EQ(c["gtpu"]["packets_where_gtp_length_plus_8_differs_from_udp_payload"], 1);
  EXPECT_EQ(c["gtpu"]["by_teid"]["0x00000005"]["gtp_length_field_bytes"], 2096);
}

TEST_F(ObsKernel, FragmentedGtpuIsCountedOnceWithTheLastFrameLength) {
  // First fragment: IP header + UDP + GTP header + part of the T-PDU.
  auto first = PacketBuilder()
                   .eth()
                   .ipv4("192.168.1.10", "192.168.1.20", {.id = 0x1234, .more_fragments = true})
                   .udp(2152, 2152, 8 + 8 + 100)
                   .gtpu(kGtpTpdu, 0xabc, {.length = 100})
                   .payload(40)
                   .build();
  auto last = PacketBuilder()
                  .eth()
                  .ipv4("192.168.1.10", "192.168.1.20", {.proto = 17, .id = 0x1234, .frag_offset = 7})
                  .payload(60)
                  .build();
  auto lonely = PacketBuilder()
                    .eth()
                    .ipv4("192.168.1.10", "192.168.1.20", {.id = 0x9999, .more_fragments = true})
                    .udp(2152, 2152, 8 + 8 + 100)
                    .gtpu(kGtpTpdu, 0xdef, {.length = 100})
                    .payload(40)
                    .build();
  run(first);
  run(last, 1, 1000);  // frame.len of the completing frame, as tshark counts it
  run(lonely);         // never completed: Wireshark never counts it either
  json g = counters()["gtpu"];
  EXPECT_EQ(g["packets"], 1);
  EXPECT_EQ(g["frame_bytes"], 1000);
  EXPECT_EQ(g["udp_payload_bytes"], 108);
  EXPECT_EQ(g["gtp_length_field_bytes"], 100);
  EXPECT_EQ(g["distinct_teids"], 1);
  EXPECT_EQ(g["by_teid"]["0x00000abc"]["frame_bytes"], 1000);
  EXPECT_EQ(g["fragmented_datagrams"], 2);
  EXPECT_EQ(g["fragmented_datagrams_completed"], 1);
  EXPECT_EQ(counters()["packets"]["ipv4_fragments"], 3);
}

TEST_F(ObsKernel, PfcpMalformedLengthsAreCountedAndBounded) {
  // IE length pointing past the message: the message counts, the IE walk stops.
  PfcpIe bad_ie{19, {1}, uint16_t{300}};
  run(n4("10.0.0.2", "10.0.0.1").pfcp(51, 1, {.seid = 1, .ies = {bad_ie}}).build());
  // Message length past the datagram.
  run(n4("10.0.0.2", "10.0.0.1").pfcp(53, 2, {.seid = 1, .ies = {pfcp_cause(1)}, .length = 500}).build());
  run(n4("10.0.0.1", "10.0.0.2").pfcp(1, 3, {.version = 2}).build());
  run(n4("10.0.0.1", "10.0.0.2").bytes({0x20, 1, 0}).build());
  // 17 IEs before a Cause: beyond the walk's bound.
  PfcpOpts many{.seid = 1};
  for (int i = 0; i < 17; i++) many.ies.push_back(pfcp_recovery_ts(i));
  many.ies.push_back(pfcp_cause(1));
  run(n4("10.0.0.2", "10.0.0.1").pfcp(55, 4, many).build());
  json c = counters();
  for (const char* r : {"pfcp_ie_past_end", "pfcp_length_past_end", "pfcp_bad_version", "pfcp_truncated",
                        "pfcp_too_many_ies"})
    EXPECT_EQ(c["malformed"][r], 1) << r << " in " << c["malformed"].dump();
  EXPECT_EQ(c["pfcp"]["messages"], 3);
  EXPECT_EQ(c["pfcp"]["by_msg_type"]["53"]["count"], 1);
  EXPECT_EQ(c["pfcp"]["responses_unmatched"], 3);
}

TEST_F(ObsKernel, PfcpFollowOnMessagesShareADatagram) {
  auto f = n4("10.0.0.2", "10.0.0.1")
               .pfcp(57, 5, {.seid = 9, .ies = {pfcp_cause(1)}, .follow_on = true})
               .pfcp(56, 6, {.seid = 9, .ies = {pfcp_recovery_ts(1)}})
               .build();
  run(f);
  json p = counters()["pfcp"];
  EXPECT_EQ(p["messages"], 2);
  EXPECT_EQ(p["by_msg_type"]["56"]["count"], 1);
  EXPECT_EQ(p["by_msg_type"]["57"]["count"], 1);
  EXPECT_EQ(p["requests"], 1);
  EXPECT_EQ(p["responses"], 1);
  EXPECT_TRUE(counters()["malformed"].empty()) << counters()["malformed"].dump();
}

TEST_F(ObsKernel, PfcpSessionGaugeFollowsEstablishmentsAndDeletions) {
  for (uint32_t seq = 1; seq <= 3; seq++) {
    run(n4("10.0.0.1", "10.0.0.2").pfcp(50, seq, {.seid = 0}).build(), seq * 1000);
    run(n4("10.0.0.2", "10.0.0.1").pfcp(51, seq, {.seid = seq, .ies = {pfcp_cause(1)}}).build(), seq * 1000 + 2'000'000);
  }
  run(n4("10.0.0.1", "10.0.0.2").pfcp(54, 10, {.seid = 1}).build(), 10'000'000);
  run(n4("10.0.0.2", "10.0.0.1").pfcp(55, 10, {.seid = 1, .ies = {pfcp_cause(1)}}).build(), 10'000'100);
  // A rejected establishment is counted by cause but opens no session.
  run(n4("10.0.0.1", "10.0.0.2").pfcp(50, 11, {.seid = 0}).build(), 20'000'000);
  run(n4("10.0.0.2", "10.0.0.1").pfcp(51, 11, {.seid = 0, .ies = {pfcp_cause(64)}}).build(), 20'000'050);
  json p = counters()["pfcp"];
  EXPECT_EQ(p["sessions_established"], 2);
  EXPECT_EQ(p["session_establishment_responses_accepted"], 3);
  EXPECT_EQ(p["cause_by_msg_type"]["51"]["causes"]["64"]["name"], "Request rejected(reason not specified)");
  EXPECT_EQ(p["response_latency"]["51"]["count"], 4);
  EXPECT_EQ(p["response_latency"]["55"]["sum_ns"], 100);
  EXPECT_EQ(p["requests_pending"], 0);
}

TEST_F(ObsKernel, PfcpQuotedInIcmpIsCountedByTypeButNotTimed) {
  auto quoted = PacketBuilder()
                    .eth()
                    .ipv4("10.0.0.1", "10.0.0.2")
                    .bytes({3, 3, 0, 0, 0, 0, 0, 0})  // ICMP port unreachable
                    .ipv4("10.0.0.2", "10.0.0.1")
                    .udp(8805, 8805)
                    .pfcp(51, 1, {.seid = 5, .ies = {pfcp_cause(1)}})
                    .build();
  quoted[14 + 9] = 1;  // outer protocol: ICMP (the builder's default would say "no next header")
  run(quoted);
  json p = counters()["pfcp"];
  EXPECT_EQ(p["messages"], 1);
  EXPECT_EQ(p["in_icmp_errors"], 1);
  EXPECT_EQ(p["by_msg_type"]["51"]["count"], 1);
  EXPECT_EQ(p["session_establishment_responses_accepted"], 1);
  EXPECT_EQ(p["sessions_established"], 0);
  EXPECT_EQ(p["responses"], 0);
  EXPECT_TRUE(p["response_latency"].empty());
}

TEST_F(ObsKernel, XdpCountsLikeTcAndPasses) {
  auto f = n3().gtpu(kGtpTpdu, 0x5, {.ext = {pdu_session_container(0, 1)}}).ipv4("1.1.1.1", "2.2.2.2").payload(30).build();
  run_xdp(f);
  run_xdp(std::vector<uint8_t>(f.begin(), f.begin() + 20));  // truncated: still XDP_PASS
  json c = counters();
  EXPECT_EQ(c["gtpu"]["packets"], 1);
  EXPECT_EQ(c["gtpu"]["frame_bytes"], f.size());
  EXPECT_EQ(c["gtpu"]["qfi"]["1"], 1);
  EXPECT_EQ(c["malformed"]["ipv4_truncated"], 1);
  EXPECT_EQ(c["counters"]["packets"]["ingress"], 2);
}

TEST_F(ObsKernel, TransportCountsPerInterfaceAndProtocol) {
  kagami::bpf::TestRunInput in;
  auto udp = PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").udp(1, 2).payload(10).build();
  auto tcp = PacketBuilder().eth().ipv4("1.1.1.1", "2.2.2.2").tcp(1, 2).payload(10).build();
  run(udp);
  run(udp);
  run(tcp);
  run(std::vector<uint8_t>{2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4});  // ARP
  json t = counters()["packets"];
  EXPECT_EQ(t["packets"], 4);
  EXPECT_EQ(t["non_ip"], 1);
  uint64_t udp_pk = 0, tcp_pk = 0, udp_bytes = 0;
  for (const auto& i : t["interfaces"]) {
    EXPECT_EQ(i["slot"], 0) << "no interface configured: every packet is slot 0 (\"other\")";
    if (i["protocol"] == "udp") {
      udp_pk += i["packets"].get<uint64_t>();
      udp_bytes += i["bytes"].get<uint64_t>();
    }
    if (i["protocol"] == "tcp") tcp_pk += i["packets"].get<uint64_t>();
  }
  EXPECT_EQ(udp_pk, 2u);
  EXPECT_EQ(udp_bytes, 2 * udp.size());
  EXPECT_EQ(tcp_pk, 1u);
}

// The interface slot table: a packet on a configured ifindex counts under
// its slot (transport, GTP-U per type and per TEID, PFCP per type), one on
// an ifindex not in the table under slot 0; an ifindex whose entry another
// one took is found in the next entry. Test runs need an existing device,
// so every run is on lo (ifindex 1) and the table changes between them.
TEST_F(ObsKernel, InterfaceSlotsLabelTheCounters) {
  int fd = obj_->map_fd(OBS_MAP_IFSLOT);
  ASSERT_GE(fd, 0);
  auto put = [&](uint32_t k, uint32_t ifindex, uint32_t slot) {
    obs_ifslot e{ifindex, slot};
    ASSERT_TRUE(kagami::bpf::map_update(fd, &k, &e));
  };
  auto gtp = PacketBuilder()
                 .eth()
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .udp(2152, 2152)
                 .gtpu(kGtpTpdu, 0x42)
                 .ipv4("10.45.0.2", "8.8.8.8")
                 .udp(1, 2)
                 .build();
  auto pfcp = PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").udp(8805, 8805).pfcp(1, 9).build();
  // A Heartbeat Response to it, with a Cause, and an SCTP DATA chunk.
  auto resp = PacketBuilder()
                  .eth()
                  .ipv4("10.0.0.2", "10.0.0.1")
                  .udp(8805, 8805)
                  .pfcp(2, 9, {.ies = {kagami::test::pfcp_cause(1)}})
                  .build();
  uint32_t tsn = 100;
  std::vector<uint8_t> sctp;
  auto send = [&] {
    sctp = PacketBuilder()
               .eth()
               .ipv4("10.0.0.3", "10.0.0.4")
               .sctp(38412, 38412, 7, {kagami::test::sctp_data(tsn++, 60, std::vector<uint8_t>(8, 1))})
               .build();
    for (const auto* p : {&gtp, &pfcp, &resp, &sctp}) {
      kagami::bpf::TestRunInput in;
      in.set_skb_ctx = true;
      in.ifindex = 1;
      in.packet = *p;
      auto r = kagami::bpf::test_run_skb(obj_->tc_ingress_fd(), in);
      ASSERT_TRUE(r) << r.error().message;
    }
  };
  put(1, 1, 3);  // lo -> slot 3
  send();
  put(1, 1 + OBS_IFSLOT_TABLE, 4);  // another ifindex took lo's entry...
  put(2, 1, 5);                     // ...so lo is in the next one, slot 5
  send();
  put(2, 0, 0);  // lo not in the table: slot 0
  send();
  auto s = obj_->snapshot();
  ASSERT_TRUE(s) << s.error().message;
  for (uint32_t slot : {3u, 5u, 0u}) {
    EXPECT_EQ(s->gtpu_msg_by_slot[slot][255], 1u) << slot;
    EXPECT_EQ(s->pfcp_msg_by_slot[slot][1], 1u) << slot;
    ASSERT_TRUE(s->teids.count(0x42));
    EXPECT_EQ(s->teids.at(0x42).by_slot[static_cast<uint8_t>(slot)].packets, 1u) << slot;
    EXPECT_EQ((s->iface[kagami::obs::IfaceKey{static_cast<uint8_t>(slot), OBS_DIR_INGRESS, OBS_L4_UDP}].packets), 3u)
        << slot;
  }
  for (uint8_t slot : {3, 5, 0}) {
    EXPECT_EQ((s->pfcp_cause_by_slot[{slot, 2, 1}]), 1u) << int(slot);
    EXPECT_EQ((s->pfcp_latency_by_slot[{slot, 2}].count), 1u) << int(slot);
    EXPECT_EQ(s->sctp_chunk_by_slot[slot][0], 1u) << int(slot);  // DATA
    EXPECT_EQ(s->sctp_ppid_by_slot[slot][60], 1u) << int(slot);
    EXPECT_EQ(s->slot_ctr[slot][OBS_SCTR_SCTP_DATA_CHUNKS], 1u) << int(slot);
  }
  EXPECT_EQ(s->gtpu_msg_by_slot[4][255], 0u);
  EXPECT_EQ(s->gtpu_msg[255], 3u);
  EXPECT_EQ(s->pfcp_latency.at(2).count, 3u);
}

}  // namespace
