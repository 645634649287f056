// PcapngSource: a streaming pcapng block reader (IETF draft-ietf-opsawg-pcapng)
// for PcapReader, written because libpcap 1.10 rejects files whose interfaces
// differ in link type or snapshot length (see pcap_reader.h).
//
// Understands: Section Header (byte order per section; a new section resets
// the interface list), Interface Description (link type, if_tsresol,
// if_tsoffset), Enhanced Packet, Simple Packet and the obsolete Packet block.
// Every other block type is skipped by its length. Every length read from the
// file is checked against the block that holds it before use; a damaged block
// is an Error naming its file offset.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/result.h"

namespace kagami::replay {

struct PcapngPacket {
  const uint8_t* data = nullptr;
  uint32_t cap_len = 0;
  uint32_t wire_len = 0;
  uint64_t ts_ns = 0;
  int link_type = 0;  // LINKTYPE_* of the packet's interface, mapped to DLT_*
};

class PcapngSource {
 public:
  // Takes ownership of f (fclose in the destructor).
  explicit PcapngSource(FILE* f, std::string name) : f_(f), name_(std::move(name)) {}
  ~PcapngSource();
  PcapngSource(const PcapngSource&) = delete;
  PcapngSource& operator=(const PcapngSource&) = delete;

  // Reads the first Section Header Block: an Error if the file is not pcapng.
  Result<void> start();
  // The next packet (true), end of file (false), or a damaged file (Error).
  Result<bool> next(PcapngPacket& out);

  // Link types of the interfaces seen so far (DLT_* values), in order.
  const std::vector<int>& link_types() const { return seen_link_types_; }

 private:
  struct Interface {
    int link_type = 0;
    uint32_t snaplen = 0;
    bool ts_pow2 = false;   // if_tsresol MSB: 2^-n instead of 10^-n
    uint8_t ts_exp = 6;     // default resolution: microseconds
    int64_t ts_offset_s = 0;
  };
  Result<bool> read_block();  // fills block_ with one whole block; false at EOF
  uint32_t u32(size_t off) const;
  uint16_t u16(size_t off) const;
  Result<void> parse_shb();
  Result<void> parse_idb();
  uint64_t to_ns(const Interface& ifc, uint64_t ts) const;

  FILE* f_ = nullptr;
  std::string name_;
  bool swapped_ = false;       // section written in the other byte order
  uint64_t offset_ = 0;        // file offset of the current block
  std::vector<uint8_t> block_; // the current block, header and trailer included
  std::vector<Interface> ifaces_;
  std::vector<int> seen_link_types_;
};

}  // namespace kagami::replay
