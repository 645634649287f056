// obs live: the module's plan() loaded through the real ProgramManager on a
// test host's veth (TC ingress + egress), real GTP-U and PFCP datagrams sent
// across it from a network namespace, then collect()/snapshot() read back
// through the manager's map fds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "modules/obs/obs_module.h"
#include "kernel/pm_fixture.h"
#include "support/packet_builder.h"

namespace kagami::test {
namespace {

class ObsLive : public PmTest {};

void send_payload_from_ns(const TestHost& h, int port, const std::vector<uint8_t>& payload, int n) {
  Fd s = socket_in_ns(h.ns, SOCK_DGRAM);
  ASSERT_TRUE(s.valid());
  auto a = addr4(h.host_ip, port);
  for (int i = 0; i < n; i++)
    ASSERT_GE(::sendto(s.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
}

TEST_F(ObsLive, CountsGtpuAndPfcpCrossingAnInterface) {
  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  obs::ObsModule mod;
  kagami::core::ModuleContext ctx;
  ctx.node = "test-node";
  auto reqs = mod.plan(nlohmann::json{{"interfaces", {h->host_if}}}, ctx);
  ASSERT_TRUE(reqs) << reqs.error().message;
  for (const auto& r : *reqs) {
    auto info = pm_->load(r);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->attachments.size(), 2u);
  }
  // What the agent does after every apply: the interface gets its slot.
  auto conf = mod.configure(*pm_);
  ASSERT_TRUE(conf) << conf.error().message;

  auto gtp = PacketBuilder()
                 .gtpu(kGtpTpdu, 0xbeef, {.ext = {pdu_session_container(1, 6)}})
                 .ipv4("10.45.0.9", "8.8.4.4")
                 .udp(4000, 53)
                 .payload(32)
                 .build();
  send_payload_from_ns(*h, 2152, gtp, 5);
  auto pfcp = PacketBuilder().pfcp(1, 42, {.ies = {pfcp_recovery_ts(7)}}).build();  // Heartbeat Request
  send_payload_from_ns(*h, 8805, pfcp, 1);

  auto snap = mod.snapshot(*pm_);
  ASSERT_TRUE(snap) << snap.error().message;
  const auto& g = (*snap)["gtpu"];
  EXPECT_EQ(g["by_teid"]["0x0000beef"]["packets"], 5) << g.dump();
  EXPECT_EQ(g["by_teid"]["0x0000beef"]["ingress_packets"], 5);
  // Ethernet 14 + IPv4 20 + UDP 8 + the GTP datagram, as the wire carries it.
  EXPECT_EQ(g["by_teid"]["0x0000beef"]["frame_bytes"], 5 * (42 + gtp.size()));
  EXPECT_EQ(g["qfi"]["6"], 5);
  // Nothing listens on 8805 in the root namespace: its ICMP port unreachable
  // quotes the request on the way back (egress), and that quote counts by
  // type like in Wireshark, but not as a request.
  const auto& p = (*snap)["pfcp"];
  EXPECT_EQ(p["by_msg_type"]["1"]["count"], 1 + p["in_icmp_errors"].get<int>());
  EXPECT_EQ(p["requests"], 1);
  EXPECT_EQ(p["requests_pending"], 1);
  // Per interface: the host end of the veth is the configured interface.
  EXPECT_EQ(g["by_interface"][h->host_if]["0xff"], 5) << g["by_interface"].dump();
  EXPECT_EQ(p["by_interface"][h->host_if]["1"], 1 + p["in_icmp_errors"].get<int>()) << p["by_interface"].dump();
  bool named = false;
  for (const auto& i : (*snap)["packets"]["interfaces"]) named = named || i["interface"] == h->host_if;
  EXPECT_TRUE(named) << (*snap)["packets"].dump();
  // Nothing runs in the test host's namespace: its owner is not known.
  const auto& own = (*snap)["packets"]["interface_owners"][h->host_if];
  EXPECT_EQ(own["slot"], 1) << own.dump();
  EXPECT_EQ(own["ifindex"], h->host_ifindex);
  EXPECT_EQ(own["pod_uid"], "");

  auto fams = mod.collect(*pm_);
  ASSERT_TRUE(fams) << fams.error().message;
  bool saw_iface = false, saw_teid = false;
  for (const auto& f : *fams) {
    for (const auto& s : f.samples) {
      EXPECT_EQ(s.labels.at("node"), "test-node") << f.name;
      if (s.labels.count("interface")) {
        EXPECT_TRUE(s.labels.count("pod_uid")) << f.name;
      }
      if (f.name == "kagami_obs_packets_total" && s.labels.at("interface") == h->host_if &&
          s.labels.at("protocol") == "udp" && s.labels.at("direction") == "ingress")
        saw_iface = s.value >= 6;
      if (f.name == "kagami_obs_gtpu_teid_packets_total" && s.labels.at("teid") == "0x0000beef")
        saw_teid = s.value == 5 && s.labels.at("interface") == h->host_if;
    }
  }
  EXPECT_TRUE(saw_iface);
  EXPECT_TRUE(saw_teid);
}

}  // namespace
}  // namespace kagami::test
