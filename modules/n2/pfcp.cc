#include "modules/n2/pfcp.h"

namespace kagami::n2 {
namespace {

// TS 29.244 8.1.2 IE types the join reads.
constexpr int kCreatePdr = 1, kPdi = 2, kCreateFar = 3, kForwardingParameters = 4, kCreatedPdr = 8,
              kUpdatePdr = 9, kUpdateFar = 10, kUpdateForwardingParameters = 11, kCause = 19, kFteid = 21,
              kFseid = 57, kOuterHeaderCreation = 84, kUeIpAddress = 93;

bool grouped(int t) {
  return t == kCreatePdr || t == kPdi || t == kCreateFar || t == kForwardingParameters || t == kCreatedPdr ||
         t == kUpdatePdr || t == kUpdateFar || t == kUpdateForwardingParameters;
}

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// F-TEID (8.2.3): flags (V4 bit 1, V6 bit 2, CH bit 3), TEID, IPv4, IPv6.
// CH set: the UPF is asked to choose; no TEID yet (it comes in Created PDR).
void fteid(std::span<const uint8_t> v, PfcpMessage& m) {
  if (v.empty()) return;
  const uint8_t f = v[0];
  if (f & 0x04) return;
  size_t need = 5 + ((f & 1) ? 4 : 0) + ((f & 2) ? 16 : 0);
  if (v.size() < need) {
    m.error = "f_teid_cut";
    return;
  }
  PfcpTunnelEnd e;
  e.teid = be32(&v[1]);
  size_t o = 5;
  if (f & 1) {
    e.ipv4.assign(v.begin() + 5, v.begin() + 9);
    o = 9;
  }
  if (f & 2) e.ipv6.assign(v.begin() + static_cast<long>(o), v.begin() + static_cast<long>(o + 16));
  m.fteids.push_back(std::move(e));
}

// Outer Header Creation (8.2.56): description (2 octets; bit 1 GTP-U/UDP/IPv4,
// bit 2 GTP-U/UDP/IPv6, bit 3 UDP/IPv4, bit 4 UDP/IPv6 of the first), then
// the TEID when GTP-U, IPv4 when bit 1 or 3, IPv6 when bit 2 or 4.
void outer_header(std::span<const uint8_t> v, PfcpMessage& m) {
  if (v.size() < 2) return;
  const uint8_t d = v[0];
  const bool gtp = d & 0x03, v4 = d & 0x05, v6 = d & 0x0a;
  if (!gtp) return;
  size_t need = 2 + 4 + (v4 ? 4 : 0) + (v6 ? 16 : 0);
  if (v.size() < need) {
    m.error = "outer_header_creation_cut";
    return;
  }
  PfcpTunnelEnd e;
  e.teid = be32(&v[2]);
  size_t o = 6;
  if (v4) {
    e.ipv4.assign(v.begin() + 6, v.begin() + 10);
    o = 10;
  }
  if (v6) e.ipv6.assign(v.begin() + static_cast<long>(o), v.begin() + static_cast<long>(o + 16));
  m.outer.push_back(std::move(e));
}

void ies(std::span<const uint8_t> b, PfcpMessage& m, int depth) {
  if (depth >= kPfcpMaxDepth) {
    m.error = "ies_too_deep";
    return;
  }
  size_t off = 0;
  // kPfcpMaxIes per level: the largest session messages carry a few dozen
  // IEs per level (one Create PDR/FAR/QER/URR per rule); each IE is at
  // least 4 octets, so the payload bound (2 KiB) allows 512 at most.
  for (int i = 0; i < kPfcpMaxIes && off < b.size(); i++) {
    if (off + 4 > b.size()) {
      m.error = "ie_header_cut";
      return;
    }
    const int type = (b[off] << 8) | b[off + 1];
    const size_t len = (static_cast<size_t>(b[off + 2]) << 8) | b[off + 3];
    if (off + 4 + len > b.size()) {
      m.error = "ie_past_end";
      return;
    }
    auto v = b.subspan(off + 4, len);
    if (type & 0x8000) {
      // Vendor-specific: an enterprise ID, then data; nothing for the join.
    } else if (grouped(type)) {
      ies(v, m, depth + 1);
    } else if (type == kFteid) {
      fteid(v, m);
    } else if (type == kOuterHeaderCreation) {
      outer_header(v, m);
    } else if (type == kFseid && depth == 0) {
      // Flags (V6 bit 1, V4 bit 2), SEID, IPv4, IPv6.
      if (v.size() >= 9) {
        uint64_t s = 0;
        for (int k = 1; k <= 8; k++) s = (s << 8) | v[static_cast<size_t>(k)];
        m.fseid = s;
        if ((v[0] & 2) && v.size() >= 13) m.fseid_ipv4.assign(v.begin() + 9, v.begin() + 13);
      } else {
        m.error = "f_seid_cut";
      }
    } else if (type == kUeIpAddress) {
      // Flags (V6 bit 1, V4 bit 2, ...), IPv4, IPv6.
      if (v.size() >= 5 && (v[0] & 2) && m.ue_ipv4.empty()) m.ue_ipv4.assign(v.begin() + 1, v.begin() + 5);
    } else if (type == kCause && depth == 0 && len >= 1) {
      m.cause = v[0];
    }
    off += 4 + len;
  }
  if (off < b.size() && m.error.empty()) m.error = "too_many_ies";
}

}  // namespace

PfcpMessage decode_pfcp(std::span<const uint8_t> p) {
  PfcpMessage m;
  // The messages of the datagram (FO flag: another follows), counted; at
  // most 4 (obs's PFCP_MAX_MSGS bound; a datagram holds a request and a
  // piggybacked response at most, TS 29.244 7.2.1).
  size_t off = 0;
  for (int i = 0; i < 4 && off + 4 <= p.size(); i++) {
    size_t len = (static_cast<size_t>(p[off + 2]) << 8) | p[off + 3];
    m.messages++;
    if (!(p[off] & 0x04)) break;
    off += 4 + len;
  }
  if (p.size() < 8) {
    m.error = "header_cut";
    return m;
  }
  if ((p[0] >> 5) != 1) {
    m.error = "version";
    return m;
  }
  m.type = p[1];
  const size_t len = (static_cast<size_t>(p[2]) << 8) | p[3];
  const bool s = p[0] & 0x01;
  const size_t hdr = s ? 16 : 8;
  if (4 + len < hdr || p.size() < hdr) {
    m.error = "header_cut";
    return m;
  }
  if (s) {
    uint64_t v = 0;
    for (int k = 4; k < 12; k++) v = (v << 8) | p[static_cast<size_t>(k)];
    m.header_seid = v;
  }
  m.seq = (static_cast<uint32_t>(p[hdr - 4]) << 16) | (static_cast<uint32_t>(p[hdr - 3]) << 8) | p[hdr - 2];
  size_t end = 4 + len;
  if (end > p.size()) {
    m.error = "message_cut";
    end = p.size();
  }
  ies(p.subspan(hdr, end - hdr), m, 0);
  return m;
}

}  // namespace kagami::n2
