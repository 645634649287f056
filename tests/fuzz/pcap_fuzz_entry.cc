#include "fuzz/pcap_fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "replay/pcap_reader.h"
#include "replay/replay.h"
#include "replay/table.h"

namespace kagami::fuzz {
namespace {

[[noreturn]] void fail(const char* what, uint64_t a, uint64_t b) {
  std::fprintf(stderr, "pcap fuzz invariant broken: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

// libpcap caps a record at 256 KiB (MAXIMUM_SNAPLEN); normalization adds at
// most a 14-byte header in place of a 0..20-byte one.
constexpr size_t kMaxFrame = 262144 + 14;
// Bounds the work per input, so a file of millions of empty records cannot
// time the fuzzer out; well above what a small input can hold anyway.
constexpr uint64_t kMaxRecords = 100000;

}  // namespace

size_t pcap_reader_one_input(const uint8_t* data, size_t size) {
  auto r = replay::PcapReader::open_memory(std::span<const uint8_t>(data, size), "fuzz");
  if (!r) {
    if (r.error().message.empty()) fail("open error without a message", size, 0);
    return 0;
  }
  auto& reader = **r;
  replay::Frame f;
  size_t frames = 0;
  uint64_t last = 0;
  // Bounded by kMaxRecords (and by the input: each record consumes bytes).
  while (reader.frames_read() < kMaxRecords) {
    auto more = reader.next(f);
    if (!more) {
      if (more.error().message.find("fuzz") == std::string::npos) fail("error does not name the capture", 0, 0);
      break;
    }
    if (!*more) break;
    frames++;
    if (f.data.size() < 14) fail("frame shorter than Ethernet", f.data.size(), f.number);
    if (f.data.size() > kMaxFrame) fail("frame longer than any record", f.data.size(), f.number);
    if (f.number <= last) fail("frame numbers not increasing", f.number, last);
    if (f.number != reader.frames_read()) fail("frame number != records read", f.number, reader.frames_read());
    last = f.number;
    // Touch every byte so ASan sees an out-of-bounds span.
    volatile uint8_t sink = 0;
    for (uint8_t b : f.data) sink = sink ^ b;
    (void)sink;
  }
  uint64_t skipped = 0;
  for (const auto& [k, v] : reader.skipped()) skipped += v;
  if (frames + skipped != reader.frames_read()) fail("frames + skipped != records", frames + skipped, reader.frames_read());
  if (reader.snapped_frames() > reader.frames_read()) fail("more snapped than read", reader.snapped_frames(), 0);
  (void)reader.link_type_name();
  return frames;
}

void replay_render_one_input(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  std::string s = replay::render_text(j);
  if (s.empty()) fail("empty rendering", size, 0);
  // The table renderer with rates, against itself and against an empty
  // previous document (as `kagami modules --watch` calls it).
  replay::TableStyle style;
  style.seconds = 1.5;
  style.previous = &j;
  (void)replay::render_section(j, style);
  const nlohmann::json none = nlohmann::json::object();
  style.previous = &none;
  style.omit_zero = false;
  (void)replay::render_section(j, style);
}

}  // namespace kagami::fuzz
