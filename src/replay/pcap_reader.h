// PcapReader: reads a pcap or pcapng capture (libpcap) and hands out every
// frame normalized to an Ethernet frame, the form BPF_PROG_TEST_RUN feeds a
// TC or XDP program.
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
// Any other link type is not fatal: every frame is skipped and counted under
// "unsupported_link_type". Frames that cannot be normalized (non-IP cooked
// protocols, runts) are skipped and counted by reason too.
//
// wire_len is the frame's original length as the capture records it, which
// is what tshark reports as frame.len (for cooked captures it includes the
// 16/20-byte SLL header, not our synthesized 14-byte Ethernet header).
//
// pcapng with several interfaces: libpcap reads them as long as they share
// one link type; an interface with a different link type ends the read with
// an Error naming the frame (libpcap has no per-packet link type).
//
// Errors (Result): missing/unreadable file, not a capture, and a file cut
// short in the middle of a record (the Error names the frame number). A
// reader is single-threaded; the span returned by next() is valid until the
// following call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

struct pcap;

namespace kagami::replay {

struct Frame {
  uint64_t number = 0;              // 1-based, counts every record of the file like tshark
  std::span<const uint8_t> data;    // normalized Ethernet frame
  uint32_t wire_len = 0;            // original length on the wire (tshark frame.len)
  uint32_t cap_len = 0;             // bytes the capture kept of it (before normalization)
  uint64_t ts_ns = 0;               // capture timestamp, ns since the epoch
  bool snapped() const { return cap_len < wire_len; }
};

// Skip reasons, as they appear in replay's "skipped" object.
inline constexpr const char* kSkipUnsupportedLinkType = "unsupported_link_type";
inline constexpr const char* kSkipShorterThanLinkHeader = "shorter_than_link_header";
inline constexpr const char* kSkipNonIpPayload = "non_ip_payload";  // cooked/raw/null frame not carrying IP or an ethertype

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
  // it stay valid.
  Result<bool> next(Frame& out);

  int link_type() const { return link_type_; }
  // libpcap's name for the link type ("EN10MB", "LINUX_SLL", ...).
  std::string link_type_name() const;
  const std::string& name() const { return name_; }
  uint64_t frames_read() const { return frames_read_; }      // every record, skipped ones included
  uint64_t snapped_frames() const { return snapped_; }       // records with caplen < len
  const std::map<std::string, uint64_t>& skipped() const { return skipped_; }

 private:
  PcapReader(struct pcap* p, std::string name, std::vector<uint8_t> backing);
  // Writes the normalized frame into buf_; returns the skip reason or nullptr.
  const char* normalize(const uint8_t* data, uint32_t caplen);

  struct pcap* pcap_ = nullptr;
  std::string name_;
  std::vector<uint8_t> backing_;  // the fmemopen buffer, for open_memory()
  int link_type_ = 0;
  bool supported_ = false;
  std::vector<uint8_t> buf_;
  uint64_t frames_read_ = 0;
  uint64_t snapped_ = 0;
  std::map<std::string, uint64_t> skipped_;
};

// True for the link types normalize() understands.
bool link_type_supported(int dlt);

}  // namespace kagami::replay
