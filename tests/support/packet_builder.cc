#include "support/packet_builder.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>

namespace kagami::test {
namespace {

void put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v[off] = x >> 8;
  v[off + 1] = x & 0xff;
}

void put32(std::vector<uint8_t>& v, size_t off, uint32_t x) {
  v[off] = x >> 24;
  v[off + 1] = (x >> 16) & 0xff;
  v[off + 2] = (x >> 8) & 0xff;
  v[off + 3] = x & 0xff;
}

void prepend(std::vector<uint8_t>& pkt, const std::vector<uint8_t>& hdr) {
  pkt.insert(pkt.begin(), hdr.begin(), hdr.end());
}

}  // namespace

std::vector<uint8_t> ip_bytes(const std::string& addr) {
  std::vector<uint8_t> b(16);
  if (inet_pton(AF_INET, addr.c_str(), b.data()) == 1) {
    b.resize(4);
    return b;
  }
  if (inet_pton(AF_INET6, addr.c_str(), b.data()) == 1) return b;
  std::fprintf(stderr, "packet_builder: bad address '%s'\n", addr.c_str());
  std::abort();
}

GtpExt pdu_session_container(uint8_t pdu_type, uint8_t qfi) {
  // Octet 1: PDU type << 4 | flags; octet 2: (PPP, RQI | spare) QFI. With the
  // length and next-type octets that is exactly one 4-octet unit.
  return GtpExt{0x85, {static_cast<uint8_t>(pdu_type << 4), static_cast<uint8_t>(qfi & 0x3f)}, {}};
}

PfcpIe pfcp_cause(uint8_t cause) { return PfcpIe{19, {cause}, {}}; }

PfcpIe pfcp_node_id_ipv4(const std::string& addr) {
  PfcpIe ie{60, {0}, {}};
  auto a = ip_bytes(addr);
  ie.value.insert(ie.value.end(), a.begin(), a.end());
  return ie;
}

PfcpIe pfcp_recovery_ts(uint32_t ts) {
  PfcpIe ie{96, std::vector<uint8_t>(4), {}};
  put32(ie.value, 0, ts);
  return ie;
}

SctpChunk sctp_data(uint32_t tsn, uint32_t ppid, std::vector<uint8_t> data, uint16_t stream,
                    uint16_t ssn) {
  SctpChunk c{0, 0x03 /* B|E: unfragmented */, std::vector<uint8_t>(12), {}};
  put32(c.body, 0, tsn);
  put16(c.body, 4, stream);
  put16(c.body, 6, ssn);
  put32(c.body, 8, ppid);
  c.body.insert(c.body.end(), data.begin(), data.end());
  return c;
}

SctpChunk sctp_abort() { return SctpChunk{6, 0, {}, {}}; }

SctpChunk sctp_sack(uint32_t cum_tsn) {
  SctpChunk c{3, 0, std::vector<uint8_t>(12), {}};
  put32(c.body, 0, cum_tsn);
  put32(c.body, 4, 65536);  // a_rwnd
  return c;
}

PacketBuilder& PacketBuilder::eth(std::optional<uint16_t> ethertype) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0, 0};
    put16(h, 12, ethertype.value_or(next.ethertype));
    prepend(pkt, h);
  });
  return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t vid, uint16_t tpid) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(4);
    put16(h, 0, vid & 0x0fff);
    put16(h, 2, next.ethertype);
    prepend(pkt, h);
    next.ethertype = tpid;
  });
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(const std::string& src, const std::string& dst, Ipv4Opts o) {
  auto s = ip_bytes(src), d = ip_bytes(dst);
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(20);
    h[0] = 0x40 | o.ihl.value_or(5);
    put16(h, 2, o.total_length.value_or(static_cast<uint16_t>(20 + pkt.size())));
    put16(h, 4, o.id);
    put16(h, 6, static_cast<uint16_t>((o.more_fragments ? 0x2000 : 0) | (o.frag_offset & 0x1fff)));
    h[8] = 64;
    h[9] = o.proto.value_or(next.ipproto);
    std::copy(s.begin(), s.end(), h.begin() + 12);
    std::copy(d.begin(), d.end(), h.begin() + 16);
    prepend(pkt, h);
    next = {0x0800, 4};
  });
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const std::string& src, const std::string& dst,
                                   std::optional<uint16_t> payload_length) {
  auto s = ip_bytes(src), d = ip_bytes(dst);
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(40);
    h[0] = 0x60;
    put16(h, 4, payload_length.value_or(static_cast<uint16_t>(pkt.size())));
    h[6] = next.ipproto;
    h[7] = 64;
    std::copy(s.begin(), s.end(), h.begin() + 8);
    std::copy(d.begin(), d.end(), h.begin() + 24);
    prepend(pkt, h);
    next = {0x86dd, 41};
  });
  return *this;
}

PacketBuilder& PacketBuilder::ipv6_ext(uint8_t type, uint8_t len8) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(8 + 8 * static_cast<size_t>(len8));
    h[0] = next.ipproto;
    h[1] = len8;
    if (h.size() > 2) h[2] = 1;  // PadN option over the rest, valid TLV shape
    if (h.size() > 3) h[3] = static_cast<uint8_t>(h.size() - 4);
    prepend(pkt, h);
    next.ipproto = type;
  });
  return *this;
}

PacketBuilder& PacketBuilder::ipv6_frag(uint16_t offset, bool more, uint32_t id) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(8);
    h[0] = next.ipproto;
    put16(h, 2, static_cast<uint16_t>((offset << 3) | (more ? 1 : 0)));
    put32(h, 4, id);
    prepend(pkt, h);
    next.ipproto = 44;
  });
  return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport, std::optional<uint16_t> length) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(8);
    put16(h, 0, sport);
    put16(h, 2, dport);
    put16(h, 4, length.value_or(static_cast<uint16_t>(8 + pkt.size())));
    prepend(pkt, h);
    next.ipproto = 17;
  });
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags,
                                  std::optional<uint8_t> doff) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(20);
    put16(h, 0, sport);
    put16(h, 2, dport);
    h[12] = static_cast<uint8_t>(doff.value_or(5) << 4);
    h[13] = flags;
    put16(h, 14, 65535);
    prepend(pkt, h);
    next.ipproto = 6;
  });
  return *this;
}

PacketBuilder& PacketBuilder::sctp(uint16_t sport, uint16_t dport, uint32_t vtag,
                                   std::vector<SctpChunk> chunks) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(12);
    put16(h, 0, sport);
    put16(h, 2, dport);
    put32(h, 4, vtag);
    for (const auto& c : chunks) {
      size_t at = h.size();
      h.resize(at + 4);
      h[at] = c.type;
      h[at + 1] = c.flags;
      put16(h, at + 2, c.length.value_or(static_cast<uint16_t>(4 + c.body.size())));
      h.insert(h.end(), c.body.begin(), c.body.end());
      while (h.size() % 4) h.push_back(0);  // chunks are padded to 4 octets
    }
    prepend(pkt, h);
    next.ipproto = 132;
  });
  return *this;
}

PacketBuilder& PacketBuilder::gtpu(uint8_t msg_type, uint32_t teid, GtpOpts o) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(8);
    const bool opt = o.seq || !o.ext.empty() || o.pn;
    h[0] = static_cast<uint8_t>((o.version << 5) | 0x10 | (o.ext.empty() ? 0 : 0x04) |
                                (o.seq ? 0x02 : 0) | (o.pn ? 0x01 : 0));
    h[1] = msg_type;
    put32(h, 4, teid);
    if (opt && !o.truncate_optional) {
      h.resize(12);
      put16(h, 8, o.seq.value_or(0));
      h[11] = o.first_next.value_or(o.ext.empty() ? 0 : o.ext[0].type);
      for (size_t i = 0; i < o.ext.size(); i++) {
        const auto& e = o.ext[i];
        size_t body = e.content.size() + 2;
        size_t units = (body + 3) / 4;
        size_t at = h.size();
        h.resize(at + units * 4);
        h[at] = e.length.value_or(static_cast<uint8_t>(units));
        std::copy(e.content.begin(), e.content.end(), h.begin() + at + 1);
        h[at + units * 4 - 1] = i + 1 < o.ext.size() ? o.ext[i + 1].type : 0;
      }
    }
    put16(h, 2, o.length.value_or(static_cast<uint16_t>(h.size() - 8 + pkt.size())));
    prepend(pkt, h);
    next.ipproto = 59;
  });
  return *this;
}

PacketBuilder& PacketBuilder::pfcp(uint8_t msg_type, uint32_t seq, PfcpOpts o) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next& next) {
    std::vector<uint8_t> h(o.seid ? 16 : 8);
    h[0] = static_cast<uint8_t>((o.version << 5) | (o.follow_on ? 0x04 : 0) | (o.seid ? 0x01 : 0));
    h[1] = msg_type;
    size_t seq_at = 4;
    if (o.seid) {
      put32(h, 4, static_cast<uint32_t>(*o.seid >> 32));
      put32(h, 8, static_cast<uint32_t>(*o.seid));
      seq_at = 12;
    }
    h[seq_at] = (seq >> 16) & 0xff;
    h[seq_at + 1] = (seq >> 8) & 0xff;
    h[seq_at + 2] = seq & 0xff;
    for (const auto& ie : o.ies) {
      size_t at = h.size();
      h.resize(at + 4);
      put16(h, at, ie.type);
      put16(h, at + 2, ie.length.value_or(static_cast<uint16_t>(ie.value.size())));
      h.insert(h.end(), ie.value.begin(), ie.value.end());
    }
    // The length covers this message only (a following FO message is its own).
    put16(h, 2, o.length.value_or(static_cast<uint16_t>(h.size() - 4)));
    prepend(pkt, h);
    next.ipproto = 59;
  });
  return *this;
}

PacketBuilder& PacketBuilder::payload(size_t n, uint8_t fill) {
  layers_.push_back([=](std::vector<uint8_t>& pkt, Next&) {
    prepend(pkt, std::vector<uint8_t>(n, fill));
  });
  return *this;
}

PacketBuilder& PacketBuilder::bytes(std::vector<uint8_t> b) {
  layers_.push_back([b = std::move(b)](std::vector<uint8_t>& pkt, Next&) { prepend(pkt, b); });
  return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
  std::vector<uint8_t> pkt;
  Next next;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) (*it)(pkt, next);
  return pkt;
}

}  // namespace kagami::test
