// PcapReader: reads a pcap or pcapng capture and hands out every frame
// normalized to an Ethernet frame, the form BPF_PROG_TEST_RUN feeds a TC or
// XDP program.
//
// Two readers behind one interface:
//   classic pcap   libpcap (pcap_fopen_offline), every variant it knows
//                  (µs/ns magic, byte orders, modified pcap);
//   pcapng         our own block reader (pcapng_reader.cc). libpcap 1.10
//                  refuses a pcapng whose interfaces differ in link type or
//                  snapshot length ("an interface has a snapshot length 65535
//                  different from the snapshot length of the first
//                  interface"): two of the shared captures (pcpp_gtp,
//                  pcpp_gtpv2) are such files, and merged captures often
//                  are. Ours keeps a link type per interface and normalizes
//                  each frame by its own interface's type.
//
// Link types and what normalization does (docs/replay.md has the table):
//   EN10MB                  frame as captured (802.1Q/802.1ad tags kept)
//   LINUX_SLL / LINUX_SLL2  cooked header replaced by a synthesized 14-byte
//                           Ethernet header carrying the SLL protocol field
//   RAW / IPV4 / IPV6       Ethernet header synthesized, ethertype from the IP
//                           version nibble
//   NULL / LOOP             4-byte family header replaced, ethertype from the
//                           IP version nibble (the family's value is
//                           OS-specific, the nibble is not)
// Any other link type is not fatal: its frames are skipped and counted under
// "unsupported_link_type". Frames that cannot be normalized (non-IP cooked
// protocols, runts) are skipped and counted by reason too.
//
// wire_len is the frame's original length as the capture records it, which
// is what tshark reports as frame.len (for cooked captures it includes the
// 16/20-byte SLL header, not our synthesized 14-byte Ethernet header).
//
// Errors (Result): missing/unreadable file, not a capture, and a damaged or
// truncated file (the Error names the capture and the last good frame). A
// reader is single-threaded; the span returned by next() is valid until the
// following call.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

struct pcap;

namespace kagami::replay {

struct Frame {
  uint64_t number = 0;              // 1-based, counts every packet record of the file like tshark
  std::span<const uint8_t> data;    // normalized Ethernet frame
  uint32_t wire_len = 0;            // original length on the wire (tshark frame.len)
  uint32_t cap_len = 0;             // bytes the capture kept of it (before normalization)
  uint64_t ts_ns = 0;               // capture timestamp, ns since the epoch
  int link_type = 0;                // DLT_* of the frame's interface
  bool snapped() const { return cap_len < wire_len; }
};

// Skip reasons, as they appear in replay's "skipped" object.
inline constexpr const char* kSkipUnsupportedLinkType = "unsupported_link_type";
inline constexpr const char* kSkipShorterThanLinkHeader = "shorter_than_link_header";
inline constexpr const char* kSkipNonIpPayload = "non_ip_payload";  // cooked/raw/null frame not carrying IP or an ethertype

class PcapngSource;

class PcapReader {
 public:
  static Result<std::unique_ptr<PcapReader>> open(const std::string& path);
  // Reads a capture held in memory (copied), through fmemopen: the entry
  // point of the fuzzer. `name` is used in messages.
  static Result<std::unique_ptr<PcapReader>> open_memory(std::span<const uint8_t> bytes,
                                                         const std::string& name = "<memory>");
  ~PcapReader();
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  // Fills `out` with the next replayable frame and returns true; false at the
  // end of the file. Frames that cannot be normalized are skipped (counted in
  // skipped()). An Error means the file is damaged; the frames returned before
  // it stay valid, and later calls return the same Error.
  Result<bool> next(Frame& out);

  // "pcap" or "pcapng".
  const char* format() const { return ng_ ? "pcapng" : "pcap"; }
  // The link type of the file (pcap) or of its first interface (pcapng);
  // -1 for a pcapng before its first interface block was read.
  int link_type() const;
  // libpcap's name for link_type() ("EN10MB", "LINUX_SLL", ...); for a
  // pcapng whose interfaces differ, the distinct names joined with ",".
  std::string link_type_name() const;
  const std::string& name() const { return name_; }
  uint64_t frames_read() const { return frames_read_; }      // every packet record, skipped ones included
  uint64_t snapped_frames() const { return snapped_; }       // records with caplen < len
  const std::map<std::string, uint64_t>& skipped() const { return skipped_; }

 private:
  PcapReader() = default;
  static Result<std::unique_ptr<PcapReader>> from_file(FILE* f, std::string name, std::vector<uint8_t> backing);
  // Writes the normalized frame into buf_; returns the skip reason or nullptr.
  const char* normalize(int link_type, const uint8_t* data, uint32_t caplen);

  static constexpr size_t kReadBuffer = 1 << 20;
  // The FILE's stdio buffer (open()); declared first so that it outlives
  // whichever member closes the FILE.
  std::unique_ptr<char[]> read_buffer_;
  struct pcap* pcap_ = nullptr;          // classic pcap
  std::unique_ptr<PcapngSource> ng_;     // pcapng
  std::string name_;
  std::vector<uint8_t> backing_;  // the fmemopen buffer, for open_memory()
  std::vector<uint8_t> buf_;
  uint64_t frames_read_ = 0;
  uint64_t snapped_ = 0;
  std::map<std::string, uint64_t> skipped_;
  std::string sticky_error_;
};

// True for the link types normalize() understands.
bool link_type_supported(int dlt);
// libpcap's name for a DLT ("EN10MB"), or "DLT_<n>".
std::string link_type_to_name(int dlt);

}  // namespace kagami::replay
