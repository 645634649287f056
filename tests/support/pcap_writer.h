// Capture-file writer for tests: turns crafted frames into pcap or pcapng
// bytes, written from the file-format specs and independent of libpcap, so
// tests of the reader (which uses libpcap) are not checking libpcap against
// itself. Little-endian output (the byte order of every capture we ship).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace kagami::test {

// Link types (LINKTYPE_* values as stored in files).
inline constexpr uint32_t kLinkEthernet = 1;
inline constexpr uint32_t kLinkNull = 0;
inline constexpr uint32_t kLinkRaw = 101;
inline constexpr uint32_t kLinkLoop = 108;
inline constexpr uint32_t kLinkSll = 113;
inline constexpr uint32_t kLinkIpv4 = 228;
inline constexpr uint32_t kLinkIpv6 = 229;
inline constexpr uint32_t kLinkSll2 = 276;

struct PcapRecord {
  std::vector<uint8_t> data;  // the captured bytes, link header included
  uint32_t wire_len = 0;      // 0: data.size()
  uint64_t ts_ns = 0;
  uint32_t interface = 0;     // pcapng only: index into the interface list
};

// Classic pcap; nanosecond=true writes the a1b23c4d magic.
std::vector<uint8_t> make_pcap(uint32_t link_type, const std::vector<PcapRecord>& records,
                               bool nanosecond = false, uint32_t snaplen = 262144);

// pcapng: one section, one interface description block per entry of
// `interface_link_types` (if_tsresol 9 = ns), one enhanced packet block per record.
std::vector<uint8_t> make_pcapng(const std::vector<uint32_t>& interface_link_types,
                                 const std::vector<PcapRecord>& records);

// Prefixes a link-layer header for the given link type to an IP packet
// (Ethernet: synthesized MACs + ethertype from the IP version; SLL/SLL2: a
// cooked header with `protocol`; NULL/LOOP: the family word; RAW: nothing).
std::vector<uint8_t> frame_for_link(uint32_t link_type, const std::vector<uint8_t>& ip_packet);

Result<void> write_file(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace kagami::test
