// Names for the obs ABI enums and for protocol values. The message and cause
// names are Wireshark's value strings (tshark -G values, TShark 4.0), so the
// JSON reads like the truth files it is compared with.
#include <fmt/format.h>

#include "modules/obs/snapshot.h"
#include "core/parse_errors.h"
#include "kagami/abi/gtpu.h"
#include "kagami/abi/pfcp.h"

namespace kagami::obs {
namespace {

// Indexed by enum obs_counter; the static_assert catches an enum appended
// without its name.
constexpr const char* kCounterNames[] = {
    "packets",
    "bytes",
    "non_ip",
    "ipv4_fragments",
    "ipv6_fragments",
    "gtpu_packets",
    "gtpu_frame_bytes",
    "gtpu_udp_payload_bytes",
    "gtpu_length_field_bytes",
    "gtpu_length_mismatch",
    "gtpu_with_extension_header",
    "gtpu_without_extension_header",
    "gtpu_with_sequence_number",
    "gtpu_echo_request",
    "gtpu_echo_response",
    "gtpu_error_indication",
    "gtpu_end_marker",
    "gtpu_inner_ipv4",
    "gtpu_inner_ipv6",
    "gtpu_inner_other",
    "gtpu_teid_entries_inserted",
    "gtpu_fragmented_first",
    "gtpu_fragmented_completed",
    "pfcp_messages",
    "pfcp_requests",
    "pfcp_responses",
    "pfcp_responses_unmatched",
    "pfcp_pending_inserted",
    "pfcp_session_establishments_accepted",
    "pfcp_session_deletions_accepted",
    "sctp_packets",
    "sctp_chunks",
    "sctp_data_chunks",
    "sctp_data_retransmitted",
    "sctp_aborts",
    "sctp_tsn_entries_inserted",
    "malformed",
    "pfcp_in_icmp",
    "replay_bad_batches",
};
static_assert(std::size(kCounterNames) == OBS_CTR_MAX, "name every enum obs_counter value");


}  // namespace

const char* counter_name(obs_counter c) {
  return c >= 0 && c < OBS_CTR_MAX ? kCounterNames[c] : "unknown";
}

const char* malformed_reason_name(kg_parse_error r) { return core::parse_error_name(r); }

const char* l4_class_name(uint8_t cls) {
  static constexpr const char* kNames[] = {"non_ip", "tcp", "udp", "sctp", "icmp", "icmpv6", "esp", "gre", "other"};
  static_assert(std::size(kNames) == OBS_L4_CLASS_MAX, "name every enum obs_l4_class value");
  return cls < OBS_L4_CLASS_MAX ? kNames[cls] : "unknown";
}

std::string gtpu_msg_name(uint8_t t) {
  switch (t) {
    case GTPU_MSG_ECHO_REQUEST: return "Echo request";
    case GTPU_MSG_ECHO_RESPONSE: return "Echo response";
    case GTPU_MSG_ERROR_INDICATION: return "Error indication";
    case GTPU_MSG_SUPPORTED_EXT_HDRS: return "Supported extension header notification";
    case GTPU_MSG_END_MARKER: return "End Marker";
    case GTPU_MSG_TPDU: return "T-PDU";
    default: return fmt::format("Unknown ({})", t);
  }
}

std::string gtpu_ext_name(uint8_t t) {
  switch (t) {
    case 0x01: return "MBMS support indication";
    case 0x02: return "MS Info Change Reporting support indication";
    case 0x03: return "Long PDCP PDU Number";
    case 0x20: return "Service Class Indicator";
    case 0x40: return "UDP Port number";
    case 0x81: return "RAN container";
    case 0x82: return "Long PDCP PDU number";
    case 0x83: return "Xw RAN container";
    case 0x84: return "NR RAN container";
    case 0x85: return "PDU Session container";
    case 0xc0: return "PDCP PDU number";
    case 0xc1: return "Suspend Request";
    case 0xc2: return "Suspend Response";
    default: return fmt::format("Unknown (0x{:02x})", t);
  }
}

std::string pfcp_msg_name(uint8_t t) {
  static const char* const node[] = {
      "Reserved",
      "PFCP Heartbeat Request",
      "PFCP Heartbeat Response",
      "PFCP PFD Management Request",
      "PFCP PFD Management Response",
      "PFCP Association Setup Request",
      "PFCP Association Setup Response",
      "PFCP Association Update Request",
      "PFCP Association Update Response",
      "PFCP Association Release Request",
      "PFCP Association Release Response",
      "PFCP Version Not Supported Response",
      "PFCP Node Report Request",
      "PFCP Node Report Response",
      "PFCP Session Set Deletion Request",
      "PFCP Session Set Deletion Response",
      "PFCP Session Set Modification Request",
      "PFCP Session Set Modification Response",
  };
  static const char* const session[] = {
      "PFCP Session Establishment Request", "PFCP Session Establishment Response",
      "PFCP Session Modification Request",  "PFCP Session Modification Response",
      "PFCP Session Deletion Request",      "PFCP Session Deletion Response",
      "PFCP Session Report Request",        "PFCP Session Report Response",
  };
  if (t < std::size(node)) return node[t];
  constexpr uint8_t first = PFCP_MSG_SESSION_ESTABLISHMENT_REQUEST;
  if (t >= first && t < first + std::size(session)) return session[t - first];
  return fmt::format("Unknown ({})", t);
}

std::string pfcp_cause_name(uint8_t c) {
  static const char* const ok[] = {"Reserved", "Request accepted(success)",
                                   "More Usage Report to send", "Request partially accepted"};
  static const char* const rejected[] = {
      "Request rejected(reason not specified)",
      "Session context not found",
      "Mandatory IE missing",
      "Conditional IE missing",
      "Invalid length",
      "Mandatory IE incorrect",
      "Invalid Forwarding Policy",
      "Invalid F-TEID allocation option",
      "No established PFCP Association",
      "Rule creation / modification Failure",
      "PFCP entity in congestion",
      "No resources available",
      "Service not supported",
      "System failure",
      "Redirection Requested",
      "All dynamic addresses are occupied",
      "Unknown Pre-defined Rule",
      "Unknown Application ID",
      "L2TP tunnel Establishment failure",
      "L2TP session Establishment failure",
      "L2TP tunnel release",
      "L2TP session release",
      "PFCP session restoration failure",
  };
  if (c < std::size(ok)) return ok[c];
  if (c >= 64 && c < 64 + std::size(rejected)) return rejected[c - 64];
  return fmt::format("Unknown ({})", c);
}

}  // namespace kagami::obs
