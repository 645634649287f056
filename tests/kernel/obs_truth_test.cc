// obs against Wireshark: every public capture with GTP-U or PFCP is run
// frame by frame through obs_tc_ingress (replay mode) and the GTP-U/PFCP
// counters must equal the tshark truth files exactly. This is the module's
// own check of its counting rules; the full replay pipeline (all link types,
// the CLI, reports) is tested by src/replay's tests.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bpf/test_run.h"
#include "modules/obs/obs_object.h"
#include "support/netns.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// PAGE_SIZE minus the skb headroom and shared info the kernel reserves.
constexpr size_t kMaxTestRunBytes = 3500;

fs::path pcap_dir() { return fs::path(KAGAMI_SOURCE_DIR) / ".." / "shared" / "pcaps"; }

// Linux cooked (SLL, 16 bytes; SLL2, 20 bytes) to Ethernet: the programs
// always parse from an Ethernet header. The frame length reported to the
// program stays the captured frame's (tshark's frame.len).
bool to_ethernet(int dlt, const uint8_t* data, size_t caplen, std::vector<uint8_t>& out) {
  size_t hdr;
  uint16_t proto;
  if (dlt == DLT_EN10MB) {
    out.assign(data, data + caplen);
    return true;
  }
  if (dlt == DLT_LINUX_SLL && caplen >= 16) {
    hdr = 16;
    proto = (data[14] << 8) | data[15];
  } else if (dlt == DLT_LINUX_SLL2 && caplen >= 20) {
    hdr = 20;
    proto = (data[0] << 8) | data[1];
  } else {
    return false;
  }
  out.assign(14, 0);
  out[12] = proto >> 8;
  out[13] = proto & 0xff;
  out.insert(out.end(), data + hdr, data + caplen);
  return true;
}

class ObsTruth : public ::testing::TestWithParam<std::string> {};

TEST_P(ObsTruth, GtpuAndPfcpMatchTshark) {
  KAGAMI_REQUIRE_ROOT();
  const fs::path cap = pcap_dir() / GetParam();
  if (!fs::exists(cap)) GTEST_SKIP() << "capture folder absent: " << pcap_dir();
  json truth = json::parse(std::ifstream(cap.string() + ".truth.json"));
  if (!truth.contains("gtpu") && !truth.contains("pfcp")) GTEST_SKIP() << "no GTP-U/PFCP in truth";

  auto obj = kagami::obs::ObsObject::open(true);
  ASSERT_TRUE(obj) << obj.error().message;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(cap.c_str(), err);
  ASSERT_NE(p, nullptr) << err;
  const int dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* data;
  std::vector<uint8_t> frame;
  size_t frames = 0;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    if (!to_ethernet(dlt, data, h->caplen, frame) || frame.size() < 14) continue;
    // BPF_PROG_TEST_RUN takes at most about a page of skb data; the headers
    // we count are at the front, and the full length travels in cb[0].
    if (frame.size() > kMaxTestRunBytes) frame.resize(kMaxTestRunBytes);
    kagami::bpf::TestRunInput in;
    in.packet = frame;
    in.set_skb_ctx = true;
    in.cb[0] = h->len;
    in.tstamp_ns = uint64_t(h->ts.tv_sec) * 1000000000ull + uint64_t(h->ts.tv_usec) * 1000ull;
    // Frames below the Ethernet minimum are padded by the kernel's test run
    // anyway; the original length travels in cb[0].
    auto r = kagami::bpf::test_run_skb((*obj)->tc_ingress_fd(), in);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->retval, 0u);
    frames++;
  }
  const std::string perr = rc == -1 ? pcap_geterr(p) : "";
  pcap_close(p);
  if (rc == -1 && frames == 0 && perr.find("snapshot length") != std::string::npos)
    GTEST_SKIP() << "libpcap 1.10 cannot read this pcapng (" << perr
                 << "); src/replay's own pcapng reader covers it";
  ASSERT_NE(rc, -1) << perr;
  ASSERT_GT(frames, 0u);

  auto got = (*obj)->counters();
  ASSERT_TRUE(got) << got.error().message;
  if (truth.contains("gtpu")) {
    const json& t = truth["gtpu"];
    const json& g = (*got)["gtpu"];
    for (const char* k : {"packets", "frame_bytes", "udp_payload_bytes", "gtp_length_field_bytes",
                          "packets_where_gtp_length_plus_8_differs_from_udp_payload",
                          "with_extension_header", "without_extension_header",
                          "with_sequence_number", "distinct_teids", "qfi"})
      EXPECT_EQ(g[k], t[k]) << "gtpu." << k;
    for (const char* k : {"by_message_type", "extension_header_types", "pdu_session_container_type"}) {
      EXPECT_EQ(g[k].size(), t[k].size()) << "gtpu." << k << ": " << g[k].dump();
      for (const auto& [key, v] : t[k].items()) EXPECT_EQ(g[k][key]["count"], v["count"]) << "gtpu." << k << "." << key;
    }
    for (const auto& [teid, v] : t["by_teid"].items()) {
      ASSERT_TRUE(g["by_teid"].contains(teid)) << teid;
      const json& gt = g["by_teid"][teid];
      for (const char* k : {"packets", "frame_bytes", "udp_payload_bytes", "gtp_length_field_bytes"})
        EXPECT_EQ(gt[k], v[k]) << "gtpu.by_teid." << teid << "." << k;
      for (const auto& [mt, c] : v["by_message_type"].items())
        EXPECT_EQ(gt["by_message_type"][mt]["count"], c["count"]) << teid << " " << mt;
    }
  }
  if (truth.contains("pfcp")) {
    const json& t = truth["pfcp"];
    const json& g = (*got)["pfcp"];
    EXPECT_EQ(g["messages"], t["messages"]);
    EXPECT_EQ(g["session_establishment_responses_accepted"], t["session_establishment_responses_accepted"]);
    EXPECT_EQ(g["by_msg_type"].size(), t["by_msg_type"].size()) << g["by_msg_type"].dump();
    for (const auto& [mt, v] : t["by_msg_type"].items()) {
      EXPECT_EQ(g["by_msg_type"][mt]["count"], v["count"]) << "pfcp type " << mt;
      EXPECT_EQ(g["by_msg_type"][mt]["name"], v["name"]);
    }
    for (const auto& [mt, v] : t["cause_by_msg_type"].items())
      for (const auto& [c, cv] : v["causes"].items())
        EXPECT_EQ(g["cause_by_msg_type"][mt]["causes"][c]["count"], cv["count"]) << mt << "/" << c;
  }
}

std::vector<std::string> captures() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pcap_dir(), ec)) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".pcap") || name.ends_with(".pcapng")) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) out.push_back("none.pcap");  // one visible skip
  return out;
}

INSTANTIATE_TEST_SUITE_P(Captures, ObsTruth, ::testing::ValuesIn(captures()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
