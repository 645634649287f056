// Userspace PFCP reader of the n2 module (TS 29.244), for the 5G context
// join only: the session messages the kernel copied up (N2_EVENT_PFCP:
// establishment, modification, deletion; requests and responses) read for
// their SEIDs, F-TEIDs, Outer Header Creation TEIDs, UE IP address and
// Cause. Counting PFCP is obs's (in the kernel); this reads the few IEs the
// join needs, once per session message. Pure function over bytes, every
// length checked, bounded (below); fuzzed by tests/fuzz/n2_decode_fuzz.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kagami::n2 {

// A GTP-U tunnel end in PFCP: an F-TEID (the UPF's end, in a PDI) or an
// Outer Header Creation (the peer's end: the gNB's for DL on N3).
struct PfcpTunnelEnd {
  uint32_t teid = 0;
  std::vector<uint8_t> ipv4;  // 4 octets, or empty
  std::vector<uint8_t> ipv6;  // 16 octets, or empty
};

struct PfcpMessage {
  int type = -1;                      // message type (50..55 reach the join)
  std::optional<uint64_t> header_seid;  // the SEID of the header (S flag)
  uint32_t seq = 0;
  std::optional<uint64_t> fseid;      // F-SEID IE: the sender's SEID (CP in a request, UP in a response)
  std::vector<uint8_t> fseid_ipv4;
  std::vector<PfcpTunnelEnd> fteids;  // F-TEIDs with a TEID (CH=0), from Create/Created/Update PDR
  std::vector<PfcpTunnelEnd> outer;   // Outer Header Creation with a TEID, from Create/Update FAR
  std::vector<uint8_t> ue_ipv4;       // first UE IP Address IE with an IPv4 address
  std::optional<int> cause;
  int messages = 0;                   // PFCP messages in the datagram (FO flag); only the first is read
  std::string error;                  // "" or what was wrong (cut header, IE past the end, ...)
};

// Reads the first PFCP message of a UDP payload. IEs: at most
// kPfcpMaxIes per grouped level and kPfcpMaxDepth levels.
inline constexpr int kPfcpMaxIes = 256;
inline constexpr int kPfcpMaxDepth = 4;
PfcpMessage decode_pfcp(std::span<const uint8_t> payload);

}  // namespace kagami::n2
