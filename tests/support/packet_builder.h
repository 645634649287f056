// PacketBuilder: crafted frames for BPF_PROG_TEST_RUN tests, from Ethernet
// to GTP-U/PFCP/SCTP. Layers are listed outermost first and serialized
// innermost first, so every length field (IPv4 total length, IPv6 payload
// length, UDP length, GTP-U length, SCTP chunk and PFCP message/IE lengths)
// is computed from what follows it unless the test overrides it, which is how
// malformed packets are made: a wrong length is always a deliberate choice.
//
//   auto f = PacketBuilder()
//                .eth().ipv4("10.0.0.1", "10.0.0.2").udp(2152, 2152)
//                .gtpu(kGtpTpdu, 0x1234, {.seq = 7, .ext = {pdu_session_container(1, 9)}})
//                .ipv4("10.45.0.2", "8.8.8.8").udp(1000, 53).payload(20)
//                .build();
//
// Checksums are left zero (BPF_PROG_TEST_RUN and the parsers do not check
// them). Next-protocol fields (EtherType, IP protocol, next header) are
// filled in from the inner layer unless given.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kagami::test {

constexpr uint8_t kGtpEchoRequest = 1;
constexpr uint8_t kGtpEchoResponse = 2;
constexpr uint8_t kGtpErrorIndication = 26;
constexpr uint8_t kGtpEndMarker = 254;
constexpr uint8_t kGtpTpdu = 255;

struct GtpExt {
  uint8_t type = 0;
  std::vector<uint8_t> content;    // between the length octet and the next-type octet
  std::optional<uint8_t> length;   // in 4-octet units; default from content (padded)
};

// TS 38.415 PDU Session Container: pdu_type 0 = DL, 1 = UL.
GtpExt pdu_session_container(uint8_t pdu_type, uint8_t qfi);

struct GtpOpts {
  std::optional<uint16_t> seq;       // sets S
  std::vector<GtpExt> ext;           // sets E; chained in order
  bool pn = false;                   // sets PN (N-PDU number 0)
  std::optional<uint16_t> length;    // override the length field
  uint8_t version = 1;
  std::optional<uint8_t> first_next; // override the next-type octet of the header
  bool truncate_optional = false;    // flags say optional fields follow, but omit them
};

struct PfcpIe {
  uint16_t type = 0;
  std::vector<uint8_t> value;
  std::optional<uint16_t> length;  // override
};

PfcpIe pfcp_cause(uint8_t cause);
PfcpIe pfcp_node_id_ipv4(const std::string& addr);
PfcpIe pfcp_recovery_ts(uint32_t ts);

struct PfcpOpts {
  std::optional<uint64_t> seid;     // sets S
  std::vector<PfcpIe> ies;
  bool follow_on = false;           // FO: another message follows in the datagram
  std::optional<uint16_t> length;   // override the message length
  uint8_t version = 1;
};

struct SctpChunk {
  uint8_t type = 0;
  uint8_t flags = 0;
  std::vector<uint8_t> body;        // after the 4-byte chunk header
  std::optional<uint16_t> length;   // override the length field
};

SctpChunk sctp_data(uint32_t tsn, uint32_t ppid, std::vector<uint8_t> data, uint16_t stream = 0,
                    uint16_t ssn = 0);
SctpChunk sctp_abort();
SctpChunk sctp_sack(uint32_t cum_tsn);

struct Ipv4Opts {
  std::optional<uint8_t> proto;
  uint16_t id = 0;
  bool more_fragments = false;
  uint16_t frag_offset = 0;          // in 8-byte units
  std::optional<uint16_t> total_length;
  std::optional<uint8_t> ihl;        // in 4-byte units
};

class PacketBuilder {
 public:
  PacketBuilder& eth(std::optional<uint16_t> ethertype = {});
  PacketBuilder& vlan(uint16_t vid, uint16_t tpid = 0x8100);
  PacketBuilder& ipv4(const std::string& src, const std::string& dst, Ipv4Opts o = {});
  PacketBuilder& ipv6(const std::string& src, const std::string& dst,
                      std::optional<uint16_t> payload_length = {});
  // An IPv6 extension header (hop-by-hop 0, routing 43, destination options
  // 60) of `len8` 8-octet units beyond the first 8 octets.
  PacketBuilder& ipv6_ext(uint8_t type, uint8_t len8 = 0);
  PacketBuilder& ipv6_frag(uint16_t offset, bool more, uint32_t id);
  PacketBuilder& udp(uint16_t sport, uint16_t dport, std::optional<uint16_t> length = {});
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x10,
                     std::optional<uint8_t> doff = {});
  PacketBuilder& sctp(uint16_t sport, uint16_t dport, uint32_t vtag, std::vector<SctpChunk> chunks);
  PacketBuilder& gtpu(uint8_t msg_type, uint32_t teid, GtpOpts o = {});
  PacketBuilder& pfcp(uint8_t msg_type, uint32_t seq, PfcpOpts o = {});
  PacketBuilder& payload(size_t n, uint8_t fill = 0xab);
  PacketBuilder& bytes(std::vector<uint8_t> b);

  std::vector<uint8_t> build() const;

 private:
  struct Next {
    uint16_t ethertype = 0;
    uint8_t ipproto = 59;  // IPv6 "no next header"
  };
  using Layer = std::function<void(std::vector<uint8_t>& pkt, Next& next)>;
  std::vector<Layer> layers_;
};

// Parses dotted IPv4 / IPv6 text into network-order bytes; aborts the test
// binary on a typo (a test bug, not an input).
std::vector<uint8_t> ip_bytes(const std::string& addr);

}  // namespace kagami::test
