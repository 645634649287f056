// Drives the fuzz entry points (tests/fuzz/pcap_fuzz_entry.h) over seeds and
// deterministic mutations of them, so every build (g++ included, no
// libFuzzer) exercises the decoders' invariants on hostile input. The entry
// aborts on a broken invariant, so a failure here is a crash with the
// invariant named on stderr; build with -DKAGAMI_SANITIZE=ON to add
// ASan/UBSan. scripts/fuzz.sh runs the real coverage-guided fuzzers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "support/pcaps.h"
#include "fuzz/pcap_fuzz_entry.h"
#include "support/pcap_writer.h"

namespace {

namespace fs = std::filesystem;
using namespace kagami::test;
using Bytes = std::vector<uint8_t>;

using kagami::test::pcaps_dir;

Bytes ip_packet(int version, uint8_t tag, size_t len) {
  Bytes p(len, tag);
  p[0] = version == 6 ? 0x60 : 0x45;
  return p;
}

// Small captures of every link type and container the reader supports.
std::vector<std::pair<std::string, Bytes>> generated_seeds() {
  std::vector<std::pair<std::string, Bytes>> out;
  for (uint32_t lt : {kLinkEthernet, kLinkSll, kLinkSll2, kLinkRaw, kLinkIpv4, kLinkIpv6, kLinkNull, kLinkLoop}) {
    std::vector<PcapRecord> recs;
    for (int i = 0; i < 4; i++) {
      int v = (lt == kLinkIpv6 || (i % 2 && lt != kLinkIpv4)) ? 6 : 4;
      recs.push_back({frame_for_link(lt, ip_packet(v, static_cast<uint8_t>(i), 40 + 20 * i)),
                      i == 3 ? 2000u : 0u, 1000000ull * i, 0});
    }
    out.emplace_back("pcap-" + std::to_string(lt), make_pcap(lt, recs));
    out.emplace_back("pcap-ns-" + std::to_string(lt), make_pcap(lt, recs, true));
    out.emplace_back("pcapng-" + std::to_string(lt), make_pcapng({lt}, recs));
  }
  std::vector<PcapRecord> mixed = {{frame_for_link(kLinkEthernet, ip_packet(4, 1, 60)), 0, 1, 0},
                                   {frame_for_link(kLinkSll, ip_packet(6, 2, 60)), 0, 2, 1},
                                   {frame_for_link(kLinkRaw, ip_packet(4, 3, 60)), 0, 3, 2}};
  out.emplace_back("pcapng-mixed", make_pcapng({kLinkEthernet, kLinkSll, kLinkRaw}, mixed));
  return out;
}

std::vector<std::pair<std::string, Bytes>> capture_seeds() {
  std::vector<std::pair<std::string, Bytes>> out;
  std::string dir = pcaps_dir();
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto ext = e.path().extension().string();
    if (ext != ".pcap" && ext != ".pcapng") continue;
    std::ifstream in(e.path(), std::ios::binary);
    out.emplace_back(e.path().filename().string(), Bytes(std::istreambuf_iterator<char>(in), {}));
  }
  return out;
}

// One deterministic mutation of `in`, chosen and placed by rng.
Bytes mutate(const Bytes& in, std::mt19937_64& rng) {
  Bytes b = in;
  if (b.empty()) return b;
  auto pos = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  switch (rng() % 6) {
    case 0:  // truncate anywhere
      b.resize(pos(b.size()));
      break;
    case 1:  // flip a few random bytes
      for (int i = 0; i < 1 + static_cast<int>(rng() % 8); i++) b[pos(b.size())] ^= static_cast<uint8_t>(1 + rng() % 255);
      break;
    case 2: {  // an aligned 32-bit word (lengths, link types, interface ids) to an extreme
      static const uint32_t kVals[] = {0, 1, 0xffff, 0xffffffff, 0x7fffffff, 0x80000000, 12, 28};
      size_t o = pos(b.size()) & ~size_t{3};
      uint32_t v = kVals[rng() % std::size(kVals)];
      for (size_t i = 0; i < 4 && o + i < b.size(); i++) b[o + i] = static_cast<uint8_t>(v >> (8 * i));
      break;
    }
    case 3: {  // a 16-bit field to 0 / 0xffff (ethertypes, IP lengths, option lengths)
      size_t o = pos(b.size());
      uint16_t v = rng() % 2 ? 0 : 0xffff;
      b[o] = static_cast<uint8_t>(v);
      if (o + 1 < b.size()) b[o + 1] = static_cast<uint8_t>(v >> 8);
      break;
    }
    case 4: {  // duplicate a chunk (repeated blocks/records)
      size_t o = pos(b.size()), n = std::min<size_t>(1 + rng() % 256, b.size() - o);
      Bytes chunk(b.begin() + o, b.begin() + o + n);
      b.insert(b.begin() + pos(b.size()), chunk.begin(), chunk.end());
      break;
    }
    default:  // drop a chunk
    {
      size_t o = pos(b.size()), n = std::min<size_t>(1 + rng() % 64, b.size() - o);
      b.erase(b.begin() + o, b.begin() + o + n);
      break;
    }
  }
  return b;
}

TEST(ReplayFuzzSeeds, GeneratedSeedsReadAndSurviveMutations) {
  size_t with_frames = 0, without = 0;
  for (const auto& [name, bytes] : generated_seeds()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(kagami::fuzz::pcap_reader_one_input(bytes.data(), bytes.size()), name == "pcapng-mixed" ? 3u : 4u);
    std::mt19937_64 rng(std::hash<std::string>{}(name));
    for (int i = 0; i < 1000; i++) {
      Bytes m = mutate(bytes, rng);
      // Stacking mutations reaches states a single one cannot.
      if (i % 4 == 3) m = mutate(m, rng);
      (kagami::fuzz::pcap_reader_one_input(m.data(), m.size()) ? with_frames : without)++;
    }
  }
  // The mutations must reach both the frame path and the error/skip paths.
  EXPECT_GT(with_frames, 1000u);
  EXPECT_GT(without, 1000u);
}

TEST(ReplayFuzzSeeds, SharedCapturesReadAndSurviveMutations) {
  auto seeds = capture_seeds();
  if (seeds.empty()) GTEST_SKIP() << "captures folder " << pcaps_dir() << " absent (set KAGAMI_PCAPS)";
  for (const auto& [name, bytes] : seeds) {
    SCOPED_TRACE(name);
    EXPECT_GT(kagami::fuzz::pcap_reader_one_input(bytes.data(), bytes.size()), 0u);
    // Fewer mutations of the large captures keep the test within seconds;
    // mutations near the start (headers, first blocks) matter most, so
    // large files are also cut to their first 64 KiB for half the rounds.
    int rounds = bytes.size() > 200000 ? 40 : 300;
    std::mt19937_64 rng(std::hash<std::string>{}(name));
    for (int i = 0; i < rounds; i++) {
      Bytes base = (i % 2 && bytes.size() > 65536) ? Bytes(bytes.begin(), bytes.begin() + 65536) : bytes;
      Bytes m = mutate(base, rng);
      kagami::fuzz::pcap_reader_one_input(m.data(), m.size());
    }
  }
}

TEST(ReplayFuzzSeeds, RendererAcceptsAnyJson) {
  std::vector<std::string> docs = {
      R"({"capture":"x.pcap","link_type":"EN10MB","total_frames":3,"skipped":{"non_ip_payload":1},)"
      R"("gtpu":{"packets":2,"by_teid":{"0x00000001":{"packets":2,"by_message_type":{"0xff":{"count":2}}}}}})",
      R"([1,2,3])", R"("text")", R"(null)", R"({"a":[{"b":[1,{"c":"\u00ff"}]}]})",
      std::string(2000, '[') + std::string(2000, ']')};
  std::mt19937_64 rng(7);
  for (const auto& d : docs) {
    Bytes b(d.begin(), d.end());
    kagami::fuzz::replay_render_one_input(b.data(), b.size());
    for (int i = 0; i < 200; i++) {
      Bytes m = mutate(b, rng);
      kagami::fuzz::replay_render_one_input(m.data(), m.size());
    }
  }
}

}  // namespace
