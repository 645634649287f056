#include "replay/pcapng_source.h"

#include <pcap/pcap.h>

#include <cstring>

namespace kagami::replay {
namespace {

constexpr uint32_t kShb = 0x0A0D0D0A;
constexpr uint32_t kIdb = 0x00000001;
constexpr uint32_t kPb = 0x00000002;  // obsolete Packet Block
constexpr uint32_t kSpb = 0x00000003;
constexpr uint32_t kEpb = 0x00000006;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint32_t kLinktypeRaw = 101;  // LINKTYPE_RAW; DLT_RAW differs by OS

constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptIfTsresol = 9;
constexpr uint16_t kOptIfTsoffset = 14;

// A block larger than this is treated as damage rather than allocated:
// libpcap's own ceiling for a pcapng block is 16 MiB (MAX_BLOCKSIZE_MAX).
constexpr uint32_t kMaxBlock = 16u << 20;

uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }

int linktype_to_dlt(uint32_t lt) { return lt == kLinktypeRaw ? DLT_RAW : static_cast<int>(lt); }

}  // namespace

PcapngSource::~PcapngSource() {
  if (f_) std::fclose(f_);
}

uint32_t PcapngSource::u32(size_t off) const {
  uint32_t v;
  std::memcpy(&v, block_.data() + off, 4);
  return swapped_ ? bswap32(v) : v;
}

uint16_t PcapngSource::u16(size_t off) const {
  uint16_t v;
  std::memcpy(&v, block_.data() + off, 2);
  return swapped_ ? __builtin_bswap16(v) : v;
}

Result<bool> PcapngSource::read_block() {
  uint8_t hdr[8];
  size_t n = std::fread(hdr, 1, sizeof(hdr), f_);
  if (n == 0) return false;
  if (n < sizeof(hdr))
    return make_error("truncated pcapng file: block header at offset {} has {} of 8 bytes", offset_, n);
  uint32_t type, len;
  std::memcpy(&type, hdr, 4);
  std::memcpy(&len, hdr + 4, 4);
  if (type == kShb) {
    // The byte order of a section is only known from its header's magic,
    // which follows the length: read it before trusting the length.
    uint8_t bom[4];
    if (std::fread(bom, 1, 4, f_) != 4)
      return make_error("truncated pcapng file: section header at offset {} cut short", offset_);
    uint32_t magic;
    std::memcpy(&magic, bom, 4);
    if (magic == kByteOrderMagic) {
      swapped_ = false;
    } else if (magic == bswap32(kByteOrderMagic)) {
      swapped_ = true;
    } else {
      return make_error("damaged pcapng file: section header at offset {} has byte-order magic 0x{:08x}", offset_,
                        magic);
    }
    len = swapped_ ? bswap32(len) : len;
    if (len < 28 || len % 4 || len > kMaxBlock)
      return make_error("damaged pcapng file: section header at offset {} has length {}", offset_, len);
    block_.assign(hdr, hdr + 8);
    block_.insert(block_.end(), bom, bom + 4);
    block_.resize(len);
    if (std::fread(block_.data() + 12, 1, len - 12, f_) != len - 12)
      return make_error("truncated pcapng file: section header at offset {} needs {} bytes", offset_, len);
  } else {
    len = swapped_ ? bswap32(len) : len;
    if (len < 12 || len % 4 || len > kMaxBlock)
      return make_error("damaged pcapng file: block at offset {} has length {}", offset_, len);
    block_.assign(hdr, hdr + 8);
    block_.resize(len);
    size_t got = std::fread(block_.data() + 8, 1, len - 8, f_);
    if (got != len - 8)
      return make_error("truncated pcapng file: block at offset {} needs {} bytes, {} left", offset_, len, got + 8);
  }
  if (u32(len - 4) != len)
    return make_error("damaged pcapng file: block at offset {} has trailing length {} instead of {}", offset_,
                      u32(len - 4), len);
  offset_ += len;
  return true;
}

Result<void> PcapngSource::start() {
  uint8_t magic[4];
  if (std::fread(magic, 1, 4, f_) != 4 || std::memcmp(magic, "\x0a\x0d\x0d\x0a", 4) != 0)
    return make_error("not a pcapng file");
  std::rewind(f_);
  auto b = read_block();
  if (!b) return b.error();
  if (!*b) return make_error("not a pcapng file");
  return parse_shb();
}

Result<void> PcapngSource::parse_shb() {
  // type(4) len(4) magic(4) major(2) minor(2) section_length(8) options trailer(4)
  uint16_t major = u16(12);
  if (major != 1) return make_error("pcapng section at offset {} has unsupported version {}", offset_ - block_.size(), major);
  ifaces_.clear();  // interface ids are per section
  return ok();
}

Result<void> PcapngSource::parse_idb() {
  // type(4) len(4) linktype(2) reserved(2) snaplen(4) options... trailer(4)
  const size_t len = block_.size();
  if (len < 20) return make_error("damaged pcapng file: interface block at offset {} too short", offset_ - len);
  Interface ifc;
  ifc.link_type = linktype_to_dlt(u16(8));
  ifc.snaplen = u32(12);
  size_t o = 16;
  // Each option consumes >= 4 bytes and the loop stops at the trailer, so it
  // ends within len / 4 iterations.
  while (o + 4 <= len - 4) {
    uint16_t code = u16(o), olen = u16(o + 2);
    if (code == kOptEnd) break;
    size_t padded = (static_cast<size_t>(olen) + 3) & ~size_t{3};
    if (o + 4 + padded > len - 4)
      return make_error("damaged pcapng file: interface block at offset {} has an option past its end", offset_ - len);
    if (code == kOptIfTsresol && olen >= 1) {
      uint8_t v = block_[o + 4];
      ifc.ts_pow2 = v & 0x80;
      ifc.ts_exp = v & 0x7f;
    } else if (code == kOptIfTsoffset && olen >= 8) {
      uint64_t lo = u32(o + 4), hi = u32(o + 8);
      // The option is a 64-bit integer in section byte order.
      ifc.ts_offset_s = static_cast<int64_t>(swapped_ ? (lo << 32 | hi) : (hi << 32 | lo));
    }
    o += 4 + padded;
  }
  ifaces_.push_back(ifc);
  seen_link_types_.push_back(ifc.link_type);
  return ok();
}

uint64_t PcapngSource::to_ns(const Interface& ifc, uint64_t ts) const {
  // Unsigned 128-bit arithmetic: hostile resolutions cannot overflow into
  // undefined behaviour, they just give a meaningless timestamp.
  unsigned __int128 t = ts;
  if (ifc.ts_pow2) {
    uint8_t e = ifc.ts_exp > 64 ? 64 : ifc.ts_exp;
    t = (t * 1000000000u) >> e;
  } else if (ifc.ts_exp <= 9) {
    for (int i = ifc.ts_exp; i < 9; i++) t *= 10;
  } else {
    for (int i = 9; i < ifc.ts_exp && t; i++) t /= 10;
  }
  t += static_cast<unsigned __int128>(static_cast<uint64_t>(ifc.ts_offset_s)) * 1000000000u;
  return static_cast<uint64_t>(t);
}

Result<bool> PcapngSource::next(PcapngPacket& out) {
  // One block per iteration; read_block() returns false at end of file, so
  // the loop is bounded by the file size.
  for (;;) {
    auto b = read_block();
    if (!b) return b.error();
    if (!*b) return false;
    const size_t len = block_.size();
    const size_t at = offset_ - len;
    uint32_t type = u32(0);
    if (type == kShb) {
      KAGAMI_TRY(parse_shb());
      continue;
    }
    if (type == kIdb) {
      KAGAMI_TRY(parse_idb());
      continue;
    }
    if (type != kEpb && type != kSpb && type != kPb) continue;

    uint32_t ifid = 0, cap = 0, wire = 0;
    uint64_t ts = 0;
    size_t data_off = 0;
    if (type == kEpb) {
      // type len ifid ts_hi ts_lo caplen origlen data... options trailer
      if (len < 32) return make_error("damaged pcapng file: packet block at offset {} too short", at);
      ifid = u32(8);
      ts = static_cast<uint64_t>(u32(12)) << 32 | u32(16);
      cap = u32(20);
      wire = u32(24);
      data_off = 28;
    } else if (type == kPb) {
      // type len ifid(2) drops(2) ts_hi ts_lo caplen len data... trailer
      if (len < 32) return make_error("damaged pcapng file: packet block at offset {} too short", at);
      ifid = u16(8);
      ts = static_cast<uint64_t>(u32(12)) << 32 | u32(16);
      cap = u32(20);
      wire = u32(24);
      data_off = 28;
    } else {  // Simple Packet Block: type len origlen data... trailer; interface 0
      if (len < 16) return make_error("damaged pcapng file: simple packet block at offset {} too short", at);
      wire = u32(8);
      data_off = 12;
      cap = static_cast<uint32_t>(len - 4 - data_off);
      if (wire < cap) cap = wire;
    }
    if (ifid >= ifaces_.size())
      return make_error("damaged pcapng file: packet block at offset {} names interface {} of {}", at, ifid,
                        ifaces_.size());
    const Interface& ifc = ifaces_[ifid];
    if (type == kSpb && ifc.snaplen && cap > ifc.snaplen) cap = ifc.snaplen;
    if (static_cast<uint64_t>(cap) > len - 4 - data_off)
      return make_error("damaged pcapng file: packet block at offset {} claims {} captured bytes in a {}-byte block",
                        at, cap, len);
    out.data = block_.data() + data_off;
    out.cap_len = cap;
    out.wire_len = wire;
    out.ts_ns = type == kSpb ? 0 : to_ns(ifc, ts);
    out.link_type = ifc.link_type;
    return true;
  }
}

}  // namespace kagami::replay
