// PcapReader: every supported link type normalized to Ethernet, the error
// cases named, and every shared capture read to the same frame count tshark
// reports. No root needed.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pcaps.h"
#include "replay/pcap_reader.h"
#include "support/pcap_writer.h"

namespace {

namespace fs = std::filesystem;
using kagami::replay::Frame;
using kagami::replay::PcapReader;
using namespace kagami::test;

// A minimal IPv4/UDP packet (contents only need to look like IP to the reader).
std::vector<uint8_t> ipv4_packet(uint8_t tag, size_t len = 40) {
  std::vector<uint8_t> p(len, tag);
  p[0] = 0x45;
  return p;
}
std::vector<uint8_t> ipv6_packet(uint8_t tag, size_t len = 60) {
  std::vector<uint8_t> p(len, tag);
  p[0] = 0x60;
  return p;
}

struct Read {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<Frame> meta;
};

Read read_all(PcapReader& r) {
  Read out;
  Frame f;
  for (;;) {
    auto more = r.next(f);
    EXPECT_TRUE(more) << (more ? "" : more.error().message);
    if (!more || !*more) break;
    out.frames.emplace_back(f.data.begin(), f.data.end());
    out.meta.push_back(f);
  }
  return out;
}

std::unique_ptr<PcapReader> open_mem(const std::vector<uint8_t>& bytes) {
  auto r = PcapReader::open_memory(bytes, "test");
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : nullptr;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("kagami-replay-test-" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& n) const { return (path_ / n).string(); }

 private:
  fs::path path_;
};

TEST(PcapReader, MissingFileIsNamed) {
  auto r = PcapReader::open("/nonexistent/kagami/x.pcap");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/kagami/x.pcap"), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
}

TEST(PcapReader, DirectoryAndNonCaptureAreNamed) {
  TempDir d;
  auto r = PcapReader::open(fs::temp_directory_path().string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is a directory"), std::string::npos) << r.error().message;

  std::string txt = d.file("notes.txt");
  std::ofstream(txt) << "this is not a capture, just text that is long enough\n";
  auto n = PcapReader::open(txt);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("not a readable pcap/pcapng file"), std::string::npos) << n.error().message;
  EXPECT_NE(n.error().message.find("notes.txt"), std::string::npos);

  std::string empty = d.file("empty.pcap");
  std::ofstream(empty).close();
  auto e = PcapReader::open(empty);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("not a readable"), std::string::npos) << e.error().message;

  auto m = PcapReader::open_memory({}, "nothing");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("empty"), std::string::npos);
}

// `kagami replay /dev/zero` said "empty file"; a FIFO without writer blocked.
TEST(PcapReader, DevicesAndFifosAreNamedNotRead) {
  auto z = PcapReader::open("/dev/zero");
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message.find("capture /dev/zero is a character device, not a regular file"),
            std::string::npos)
      << z.error().message;
  TempDir d;
  const std::string fifo = d.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = PcapReader::open(fifo);  // returns at once: the open does not wait for a writer
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("is a FIFO, not a regular file"), std::string::npos) << f.error().message;
}

TEST(PcapReader, TruncatedFileKeepsEarlierFramesAndNamesWhere) {
  std::vector<PcapRecord> recs;
  for (uint8_t i = 0; i < 3; i++) recs.push_back({frame_for_link(kLinkEthernet, ipv4_packet(i, 100))});
  auto bytes = make_pcap(kLinkEthernet, recs);
  bytes.resize(bytes.size() - 30);  // cut inside the third record's data
  auto r = open_mem(bytes);
  ASSERT_TRUE(r);
  Frame f;
  ASSERT_TRUE(*r->next(f));
  ASSERT_TRUE(*r->next(f));
  EXPECT_EQ(f.number, 2u);
  auto third = r->next(f);
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().message.find("after frame 2"), std::string::npos) << third.error().message;
  EXPECT_NE(third.error().message.find("truncated"), std::string::npos) << third.error().message;
}

TEST(PcapReader, EthernetPassesThroughWithVlanAndTimestamps) {
  auto plain = frame_for_link(kLinkEthernet, ipv4_packet(1));
  // 802.1Q: dst, src, 0x8100, TCI, 0x0800, IP
  std::vector<uint8_t> tagged(plain.begin(), plain.begin() + 12);
  for (uint8_t b : {0x81, 0x00, 0x00, 0x64, 0x08, 0x00}) tagged.push_back(b);  // (insert() trips a g++ 12 -Warray-bounds false positive)
  auto ip = ipv4_packet(2);
  tagged.insert(tagged.end(), ip.begin(), ip.end());
  for (bool ns : {false, true}) {
    auto bytes = make_pcap(kLinkEthernet,
                           {{plain, 0, 1'600'000'000'123'456'789ull}, {tagged, 1500, 1'600'000'001'000'001'000ull}}, ns);
    auto r = open_mem(bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->link_type_name(), "EN10MB");
    auto got = read_all(*r);
    ASSERT_EQ(got.frames.size(), 2u);
    EXPECT_EQ(got.frames[0], plain);
    EXPECT_EQ(got.frames[1], tagged);
    // Microsecond files lose the sub-microsecond digits, nanosecond files keep them.
    EXPECT_EQ(got.meta[0].ts_ns, ns ? 1'600'000'000'123'456'789ull : 1'600'000'000'123'456'000ull);
    EXPECT_EQ(got.meta[1].ts_ns, 1'600'000'001'000'001'000ull);
    EXPECT_EQ(got.meta[0].wire_len, plain.size());
    EXPECT_FALSE(got.meta[0].snapped());
    EXPECT_EQ(got.meta[1].wire_len, 1500u);
    EXPECT_TRUE(got.meta[1].snapped());
    EXPECT_EQ(r->snapped_frames(), 1u);
    EXPECT_EQ(r->frames_read(), 2u);
  }
}

// Every non-Ethernet link type becomes <synthesized 14-byte header><IP packet>
// with the right ethertype, while wire_len keeps the captured frame's length.
TEST(PcapReader, CookedRawAndNullBecomeEthernet) {
  for (uint32_t lt : {kLinkSll, kLinkSll2, kLinkRaw, kLinkIpv4, kLinkIpv6, kLinkNull, kLinkLoop}) {
    SCOPED_TRACE("link type " + std::to_string(lt));
    std::vector<std::vector<uint8_t>> ips;
    if (lt != kLinkIpv6) ips.push_back(ipv4_packet(7));
    if (lt != kLinkIpv4) ips.push_back(ipv6_packet(9));
    std::vector<PcapRecord> recs;
    for (const auto& ip : ips) recs.push_back({frame_for_link(lt, ip), 0, 42000});
    for (bool ng : {false, true}) {
      auto r = open_mem(ng ? make_pcapng({lt}, recs) : make_pcap(lt, recs));
      ASSERT_TRUE(r);
      auto got = read_all(*r);
      ASSERT_EQ(got.frames.size(), ips.size());
      for (size_t i = 0; i < ips.size(); i++) {
        const auto& f = got.frames[i];
        ASSERT_EQ(f.size(), 14 + ips[i].size());
        uint16_t et = static_cast<uint16_t>(f[12] << 8 | f[13]);
        EXPECT_EQ(et, (ips[i][0] >> 4) == 6 ? 0x86DD : 0x0800);
        EXPECT_TRUE(std::equal(ips[i].begin(), ips[i].end(), f.begin() + 14));
        EXPECT_EQ(got.meta[i].wire_len, recs[i].data.size());  // link header of the file included
        EXPECT_EQ(got.meta[i].ts_ns, 42000u);
      }
      if (lt == kLinkSll) {  // the cooked source address becomes the Ethernet source
        EXPECT_EQ(got.frames[0][11], 0xcc);
      }
      EXPECT_TRUE(r->skipped().empty());
    }
  }
}

TEST(PcapReader, UnnormalizableFramesAreSkippedAndCounted) {
  // SLL carrying 802.2 LLC (protocol 0x0004), a runt SLL frame, raw non-IP.
  auto llc = frame_for_link(kLinkSll, ipv4_packet(1));
  llc[14] = 0x00;
  llc[15] = 0x04;
  std::vector<uint8_t> runt(10, 0);
  auto r = open_mem(make_pcap(kLinkSll, {{llc}, {runt}, {frame_for_link(kLinkSll, ipv4_packet(2))}}));
  auto got = read_all(*r);
  ASSERT_EQ(got.frames.size(), 1u);
  EXPECT_EQ(got.meta[0].number, 3u);  // numbering counts skipped records, like tshark
  EXPECT_EQ(r->skipped().at(kagami::replay::kSkipNonIpPayload), 1u);
  EXPECT_EQ(r->skipped().at(kagami::replay::kSkipShorterThanLinkHeader), 1u);

  std::vector<uint8_t> junk = {0x12, 0x34, 0x56};
  auto raw = open_mem(make_pcap(kLinkRaw, {{junk}, {{}}}));
  EXPECT_TRUE(read_all(*raw).frames.empty());
  EXPECT_EQ(raw->skipped().at(kagami::replay::kSkipNonIpPayload), 1u);
  EXPECT_EQ(raw->skipped().at(kagami::replay::kSkipShorterThanLinkHeader), 1u);
}

TEST(PcapReader, UnsupportedLinkTypeIsCountedNotFatal) {
  // 105 = IEEE 802.11
  auto r = open_mem(make_pcap(105, {{ipv4_packet(1)}, {ipv4_packet(2)}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->link_type_name(), "IEEE802_11");
  EXPECT_TRUE(read_all(*r).frames.empty());
  EXPECT_EQ(r->frames_read(), 2u);
  EXPECT_EQ(r->skipped().at(kagami::replay::kSkipUnsupportedLinkType), 2u);
}

TEST(PcapReader, PcapngInterfacesOfOneLinkTypeAreRead) {
  auto e = frame_for_link(kLinkEthernet, ipv4_packet(1));
  auto r = open_mem(make_pcapng({kLinkEthernet, kLinkEthernet}, {{e, 0, 1, 0}, {e, 0, 2, 1}, {e, 0, 3, 0}}));
  auto got = read_all(*r);
  EXPECT_EQ(got.frames.size(), 3u);
}

// libpcap 1.10 refuses these files; our pcapng reader normalizes each frame
// by its own interface's link type.
TEST(PcapReader, PcapngInterfacesOfDifferentLinkTypesAreEachNormalized) {
  auto ip4 = ipv4_packet(1), ip6 = ipv6_packet(2);
  auto e = frame_for_link(kLinkEthernet, ip4);
  auto s = frame_for_link(kLinkSll, ip6);
  auto r = open_mem(make_pcapng({kLinkEthernet, kLinkSll}, {{e, 0, 1000, 0}, {s, 0, 2000, 1}}));
  ASSERT_TRUE(r);
  auto got = read_all(*r);
  ASSERT_EQ(got.frames.size(), 2u);
  EXPECT_EQ(got.frames[0], e);
  EXPECT_EQ(got.frames[1][12], 0x86);
  EXPECT_TRUE(std::equal(ip6.begin(), ip6.end(), got.frames[1].begin() + 14));
  EXPECT_EQ(got.meta[1].wire_len, s.size());
  EXPECT_EQ(got.meta[1].ts_ns, 2000u);
  EXPECT_EQ(r->link_type_name(), "EN10MB,LINUX_SLL");
  EXPECT_STREQ(r->format(), "pcapng");
}

// Damaged pcapng structure is an Error naming the capture and the block.
TEST(PcapReader, DamagedPcapngIsNamed) {
  auto e = frame_for_link(kLinkEthernet, ipv4_packet(1));
  auto good = make_pcapng({kLinkEthernet}, {{e, 0, 1, 0}, {e, 0, 2, 0}});
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<Case> cases;
  auto cut = good;
  cut.resize(cut.size() - 10);
  cases.push_back({"cut", cut, "truncated"});
  auto badif = make_pcapng({kLinkEthernet}, {{e, 0, 1, 0}, {e, 0, 2, 3}});
  cases.push_back({"interface 3 of 1", badif, "interface 3 of 1"});
  auto badtrail = good;
  badtrail[badtrail.size() - 1] ^= 0x40;  // trailing length of the last block
  cases.push_back({"trailer", badtrail, "trailing length"});
  auto badcap = good;
  // First EPB starts after SHB (28) + IDB (32 with if_tsresol): caplen at +20.
  badcap[28 + 32 + 20] = 0xff;
  cases.push_back({"caplen", badcap, "captured bytes"});
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = PcapReader::open_memory(c.bytes, "bad.pcapng");
    ASSERT_TRUE(r) << r.error().message;
    Frame f;
    std::string msg;
    for (int i = 0; i < 4 && msg.empty(); i++) {
      auto more = (*r)->next(f);
      if (!more) msg = more.error().message;
      else if (!*more) break;
    }
    EXPECT_NE(msg.find("bad.pcapng"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    // The error is sticky: a caller that keeps reading gets it again.
    auto again = (*r)->next(f);
    EXPECT_FALSE(again);
  }
}

// --- the shared captures -------------------------------------------------------

using kagami::test::pcaps_dir;

TEST(PcapReader, EverySharedCaptureReadsToTsharkFrameCount) {
  std::string dir = pcaps_dir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "captures folder " << dir << " absent (set KAGAMI_PCAPS)";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string p = e.path().string();
    if (p.size() < 11 || p.substr(p.size() - 11) != ".truth.json") continue;
    std::string cap = p.substr(0, p.size() - 11);
    SCOPED_TRACE(cap);
    auto truth = nlohmann::json::parse(std::ifstream(p));
    auto r = PcapReader::open(cap);
    ASSERT_TRUE(r) << r.error().message;
    auto got = read_all(**r);
    EXPECT_EQ((*r)->frames_read(), truth["total_frames"].get<uint64_t>());
    uint64_t skipped = 0;
    for (const auto& [k, v] : (*r)->skipped()) skipped += v;
    EXPECT_EQ(got.frames.size() + skipped, (*r)->frames_read());
    for (const auto& f : got.frames) EXPECT_GE(f.size(), 14u);
    n++;
  }
  EXPECT_GT(n, 0) << "no *.truth.json in " << dir;
}

}  // namespace
