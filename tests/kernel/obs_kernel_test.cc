// obs.bpf.o under BPF_PROG_TEST_RUN: crafted frames for every parse path,
// counted through ObsObject::counters() (the same JSON replay compares with
// tshark). Every program must return TC_ACT_OK / XDP_PASS for every input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
