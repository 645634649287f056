// Bad input through the packet programs: frames of the shared captures are
// mutated deterministically (truncated, bytes flipped, length fields set to
// 0 / 0xffff), written to a new capture with the test pcap writer, and
// replayed through the obs programs. Replay must finish, every counter must
// stay within what the frames could possibly hold, and the corrupted cases
// must show up in the malformed counters.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pcaps.h"
#include "replay/pcap_reader.h"
#include "replay/replay.h"
#include "support/netns.h"
#include "support/pcap_writer.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using kagami::test::PcapRecord;

using kagami::test::pcaps_dir;

// Captures with GTP-U and/or PFCP, of several link types and containers.
const std::vector<std::string> kCaptures = {"5greplay_oai.pcap", "open5gs_testattach.pcapng",
                                            "telekom_n3_example.pcap", "pcpp_gtp.pcap",
                                            "zeek_gtp1_gn_normal_incl_fragmentation.pcap"};

enum class Kind { Truncate, FlipBytes, LengthsZero, LengthsMax };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Truncate: return "Truncate";
    case Kind::FlipBytes: return "FlipBytes";
    case Kind::LengthsZero: return "LengthsZero";
    default: return "LengthsMax";
  }
}

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Offsets of the length fields of one normalized frame; 0 = absent.
struct Fields {
  size_t l3 = 0, ip_len = 0, udp = 0, udp_len = 0, app_len = 0;  // app: GTP or PFCP length
  bool gtp_or_pfcp = false;
};

Fields locate(const std::vector<uint8_t>& f) {
  Fields x;
  size_t o = 12, n = f.size();
  uint16_t et = be16(&f[o]);
  // Two tags at most (QinQ); the shared captures have none or one.
  for (int i = 0; i < 2 && (et == 0x8100 || et == 0x88a8) && o + 6 <= n; i++) {
    o += 4;
    et = be16(&f[o]);
  }
  o += 2;
  x.l3 = o;
  uint8_t proto = 0;
  size_t l4 = 0;
  if (et == 0x0800 && o + 20 <= n) {
    x.ip_len = o + 2;
    proto = f[o + 9];
    l4 = o + (f[o] & 0x0f) * 4;
    if (be16(&f[o + 6]) & 0x1fff) return x;  // non-first fragment: no UDP header
  } else if (et == 0x86DD && o + 40 <= n) {
    x.ip_len = o + 4;
    proto = f[o + 6];
    l4 = o + 40;
  } else {
    return x;
  }
  if (proto != 17 || l4 + 8 > n) return x;
  x.udp = l4;
  x.udp_len = l4 + 4;
  uint16_t sp = be16(&f[l4]), dp = be16(&f[l4 + 2]);
  bool gtp = sp == 2152 || dp == 2152, pfcp = sp == 8805 || dp == 8805;
  if ((gtp || pfcp) && l4 + 12 <= n) {
    x.gtp_or_pfcp = true;
    x.app_len = l4 + 8 + 2;
  }
  return x;
}

struct Mutated {
  std::vector<PcapRecord> records;
  uint64_t corrupted = 0;   // frames whose GTP/PFCP/UDP/IP structure was damaged
  uint64_t wire_bytes = 0;
};

Mutated mutate_capture(const std::string& path, Kind kind, uint64_t seed) {
  Mutated m;
  auto r = kagami::replay::PcapReader::open(path);
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return m;
  std::mt19937_64 rng(seed);
  kagami::replay::Frame f;
  while (true) {
    auto more = (*r)->next(f);
    EXPECT_TRUE(more);
    if (!more || !*more) break;
    std::vector<uint8_t> d(f.data.begin(), f.data.end());
    uint32_t wire = f.wire_len;
    Fields x = locate(d);
    if (x.gtp_or_pfcp) {
      switch (kind) {
        case Kind::Truncate: {
          // Cut inside the UDP header or the GTP/PFCP header: a frame that
          // claims (via IP/UDP lengths) more than it holds.
          size_t cut = x.udp + 4 + rng() % 12;
          d.resize(std::min(cut, d.size()));
          m.corrupted++;
          break;
        }
        case Kind::FlipBytes:
          // Flip bytes anywhere from L3 on: some damage parses as valid
          // (payload bytes), so no malformed expectation per frame.
          for (int i = 0; i < 4; i++) d[x.l3 + rng() % (d.size() - x.l3)] ^= static_cast<uint8_t>(1 + rng() % 255);
          break;
        case Kind::LengthsZero:
        case Kind::LengthsMax: {
          uint16_t v = kind == Kind::LengthsZero ? 0 : 0xffff;
          // One field per frame, rotating over IP, UDP and GTP/PFCP length.
          size_t fields[] = {x.ip_len, x.udp_len, x.app_len};
          size_t at = fields[rng() % 3];
          put16(&d[at], v);
          m.corrupted++;
          break;
        }
      }
    }
    m.wire_bytes += wire;
    m.records.push_back({d, wire, f.ts_ns, 0});
  }
  return m;
}

uint64_t num(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<uint64_t>() : 0;
}

uint64_t sum_counts(const json& j) {
  uint64_t s = 0;
  if (!j.is_object()) return 0;
  for (const auto& v : j) s += v.is_object() ? num(v, {"count"}) : (v.is_number() ? v.get<uint64_t>() : 0);
  return s;
}

using Param = std::tuple<std::string, Kind>;
class ReplayMutation : public ::testing::TestWithParam<Param> {};

TEST_P(ReplayMutation, BoundedCountsAndMalformedCounted) {
  KAGAMI_REQUIRE_ROOT();
  const auto& [cap, kind] = GetParam();
  fs::path src = fs::path(pcaps_dir()) / cap;
  if (!fs::exists(src)) GTEST_SKIP() << "capture " << src << " absent (set KAGAMI_PCAPS)";

  Mutated m = mutate_capture(src.string(), kind, std::hash<std::string>{}(cap) ^ static_cast<uint64_t>(kind));
  ASSERT_FALSE(m.records.empty());
  fs::path out = fs::temp_directory_path() /
                 ("kagami-replay-mut-" + std::to_string(::getpid()) + "-" + kind_name(kind) + ".pcap");
  ASSERT_TRUE(kagami::test::write_file(out.string(), kagami::test::make_pcap(kagami::test::kLinkEthernet, m.records)));
  struct Rm {
    fs::path p;
    ~Rm() { std::error_code ec; fs::remove(p, ec); }
  } rm{out};

  auto r = kagami::replay::run({out.string(), {}});
  ASSERT_TRUE(r) << r.error().message;
  const json& j = *r;
  const uint64_t frames = m.records.size();
  EXPECT_EQ(num(j, {"total_frames"}), frames);
  EXPECT_EQ(num(j, {"replayed_frames"}), frames);
  EXPECT_EQ(num(j, {"packets", "packets"}), frames);

  const json& g = j["gtpu"];
  uint64_t gp = num(g, {"packets"});
  EXPECT_LE(gp, frames);
  EXPECT_EQ(sum_counts(g["by_message_type"]), gp);
  EXPECT_EQ(num(g, {"with_extension_header"}) + num(g, {"without_extension_header"}), gp);
  EXPECT_LE(num(g, {"frame_bytes"}), m.wire_bytes);
  // Both come from 16-bit length fields.
  EXPECT_LE(num(g, {"udp_payload_bytes"}), gp * 65535);
  EXPECT_LE(num(g, {"gtp_length_field_bytes"}), gp * 65535);
  EXPECT_LE(sum_counts(g["qfi"]), num(g, {"with_extension_header"}));
  uint64_t teid_packets = 0;
  for (const auto& t : g["by_teid"]) teid_packets += num(t, {"packets"});
  EXPECT_EQ(teid_packets, gp);

  const json& p = j["pfcp"];
  uint64_t pm = num(p, {"messages"});
  // The program walks at most 4 messages per datagram (obs ABI).
  EXPECT_LE(pm, frames * 4);
  EXPECT_EQ(sum_counts(p["by_msg_type"]), pm);

  uint64_t mal = num(j, {"malformed_total"});
  EXPECT_LE(mal, frames);  // at most one reason per packet
  if (m.corrupted > 0) {
    EXPECT_GT(mal, 0u) << m.corrupted << " frames were corrupted but nothing was counted malformed";
  }
  uint64_t by_reason = 0;
  for (const auto& v : j["malformed"]) by_reason += v.is_number() ? v.get<uint64_t>() : num(v, {"count"});
  EXPECT_EQ(by_reason, mal);
}

INSTANTIATE_TEST_SUITE_P(Captures, ReplayMutation,
                         ::testing::Combine(::testing::ValuesIn(kCaptures),
                                            ::testing::Values(Kind::Truncate, Kind::FlipBytes, Kind::LengthsZero,
                                                              Kind::LengthsMax)),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           std::string n = std::get<0>(i.param);
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n + "_" + kind_name(std::get<1>(i.param));
                         });

}  // namespace
