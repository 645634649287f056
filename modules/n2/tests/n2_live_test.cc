// n2 live: the module's plan() loaded through the real ProgramManager on a
// test host's veth (TC ingress + egress, chained at priority 90), real NGAP
// sent across it from a network namespace as SCTP in IP (raw IP sockets,
// protocol 132: this machine has no SCTP module), and the live counts
// compared with replay's over the same capture.
//
// The messages are the SCTP packets of a shared capture (5greplay_oai),
// sent one by one in capture order; the test skips visibly when the
// capture is absent. A bundled packet (two DATA chunks) and a split chunk
// are built with the packet builder.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sched.h>

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "bpf/ringbuf.h"
#include "kernel/pm_fixture.h"
#include "modules/n2/n2_module.h"
#include "replay/pcap_reader.h"
#include "replay/replay.h"
#include "support/packet_builder.h"
#include "support/pcaps.h"

namespace kagami::test {
namespace {

class N2Live : public PmTest {};

Fd raw_sctp_in_ns(const std::string& ns) {
  Fd out;
  std::thread t([&] {
    Fd nsfd(::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd.valid() || ::setns(nsfd.get(), CLONE_NEWNET) != 0) return;
    out.reset(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 132));
  });
  t.join();
  return out;
}

// The SCTP packets (common header + chunks) of a capture's IPv4 frames.
std::vector<std::vector<uint8_t>> sctp_payloads(const std::string& path) {
  std::vector<std::vector<uint8_t>> out;
  auto r = replay::PcapReader::open(path);
  if (!r) return out;
  replay::Frame f;
  while (true) {
    auto more = (*r)->next(f);
    if (!more || !*more) break;
    auto d = f.data;
    if (d.size() < 34 || d[12] != 0x08 || d[13] != 0x00) continue;
    auto ip = d.subspan(14);
    size_t ihl = (ip[0] & 0x0f) * 4u, tot = (static_cast<size_t>(ip[2]) << 8) | ip[3];
    if (ip[9] != 132 || tot > ip.size() || tot < ihl) continue;
    out.emplace_back(ip.begin() + static_cast<long>(ihl), ip.begin() + static_cast<long>(tot));
  }
  return out;
}

void drain(core::ProgramManager& pm, const core::EventSource& src, int& decoded) {
  auto fd = pm.map_fd("n2", N2_MAP_EVENTS);
  ASSERT_TRUE(fd) << fd.error().message;
  auto rb = bpf::RingBuffer::open({fd->get()}, [&](size_t, std::span<const uint8_t> rec) {
    auto j = src.decode(rec);
    ASSERT_TRUE(j) << j.error().message;
    EXPECT_EQ((*j)["kind"], "ngap");
    decoded++;
  });
  ASSERT_TRUE(rb) << rb.error().message;
  ASSERT_TRUE(rb->consume());
}

TEST_F(N2Live, LiveCountsEqualReplay) {
  const std::string cap = pcaps_dir() + "/5greplay_oai.pcap";
  if (!std::filesystem::exists(cap)) GTEST_SKIP() << "capture absent: " << cap;
  auto pkts = sctp_payloads(cap);
  ASSERT_EQ(pkts.size(), 31u);  // 14 of them carry NGAP (truth: ngap.frames), the rest INIT, SACK, ...

  auto h = net_.add_host();
  ASSERT_TRUE(h) << h.error().message;
  n2::N2Module mod;
  core::ModuleContext ctx;
  ctx.node = "test-node";
  auto reqs = mod.plan(nlohmann::json{{"interfaces", {h->host_if}}}, ctx);
  ASSERT_TRUE(reqs) << reqs.error().message;
  for (const auto& r : *reqs) {
    auto info = pm_->load(r);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->attachments.size(), 2u);
  }
  Fd s = raw_sctp_in_ns(h->ns);
  ASSERT_TRUE(s.valid());
  auto a = addr4(h->host_ip, 0);
  for (const auto& p : pkts)
    ASSERT_GE(::sendto(s.get(), p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);

  auto srcs = mod.event_sources();
  ASSERT_EQ(srcs.size(), 1u);
  int decoded = 0;
  drain(*pm_, srcs[0], decoded);
  EXPECT_EQ(decoded, 14);

  auto live = mod.snapshot(*pm_);
  ASSERT_TRUE(live) << live.error().message;
  auto rep = replay::run({cap, {"n2"}});
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ((*live)["ngap"], (*rep)["ngap"]) << (*live)["ngap"].dump() << "\n" << (*rep)["ngap"].dump();
  EXPECT_EQ((*live)["nas_5gs"], (*rep)["nas_5gs"]);
  EXPECT_EQ((*live)["nas_5gs_with_null_decipher_pref"], (*rep)["nas_5gs_with_null_decipher_pref"]);
  // The counts agree; the mean times do not (live: the send loop's timing,
  // replay: the capture's timestamps).
  auto counts = [](nlohmann::json k) {
    k.erase("RM.RegTimeMean_ms");
    k.erase("SM.PduSessionTimeMean_ms");
    return k;
  };
  EXPECT_EQ(counts((*live)["n2"]["kpis"]), counts((*rep)["n2"]["kpis"]));
  EXPECT_EQ((*live)["n2"]["kpis"]["RM.RegInitSucc"], 1);
  // Every NGAP message went the ingress way and none was lost.
  EXPECT_EQ((*live)["n2"]["counters"]["events"], 14);

  // A bundle: two DATA chunks (PPID 60) in one packet, both counted; and a
  // chunk holding half a message (B set, E clear), counted as split.
  // The first NGAP message of the capture (an NGSetupRequest): the user
  // data of the first packet whose first chunk is DATA with PPID 60.
  std::vector<uint8_t> ng;
  for (const auto& p : pkts)
    if (ng.empty() && p.size() > 28 && p[12] == 0 && p[27] == 60 && p[26] == 0 && p[25] == 0 && p[24] == 0) {
      size_t len = (static_cast<size_t>(p[14]) << 8) | p[15];
      ASSERT_LE(12 + len, p.size());
      ng.assign(p.begin() + 28, p.begin() + 12 + static_cast<long>(len));
    }
  ASSERT_FALSE(ng.empty());
  ASSERT_EQ(ng[1], 21);  // procedure code: NGSetup
  auto bundle = PacketBuilder()
                    .sctp(38412, 38412, 7, {sctp_data(1, 60, ng), sctp_data(2, 60, ng),
                                            SctpChunk{0, 0x02, {0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 60, 0x00}, {}}})
                    .build();
  ASSERT_GE(::sendto(s.get(), bundle.data(), bundle.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  drain(*pm_, srcs[0], decoded);
  EXPECT_EQ(decoded, 16);
  auto after = mod.snapshot(*pm_);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["ngap"]["pdus"], (*live)["ngap"]["pdus"].get<int>() + 2);
  EXPECT_EQ((*after)["n2"]["counters"]["split_chunks"], 1);

  auto fams = mod.collect(*pm_);
  ASSERT_TRUE(fams) << fams.error().message;
  bool seen = false;
  for (const auto& f : *fams)
    if (f.name == "kagami_n2_ngap_pdus_total")
      for (const auto& smp : f.samples)
        seen = seen || (smp.labels.at("procedure") == "id-NGSetup" && smp.labels.at("pdu_type") == "initiatingMessage" &&
                        smp.value == 3);
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace kagami::test
