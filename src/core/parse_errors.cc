#include "core/parse_errors.h"

#include <iterator>

namespace kagami::core {
namespace {

constexpr const char* kNames[] = {
    "none",
    "eth_truncated",
    "vlan_truncated",
    "vlan_too_many_tags",
    "ipv4_truncated",
    "ipv4_bad_ihl",
    "ipv4_bad_total_length",
    "ipv6_truncated",
    "ipv6_ext_truncated",
    "ipv6_ext_too_many",
    "udp_truncated",
    "udp_bad_length",
    "tcp_truncated",
    "tcp_bad_data_offset",
    "sctp_truncated",
    "sctp_chunk_bad_length",
    "sctp_chunk_past_end",
    "sctp_too_many_chunks",
    "gtpu_truncated",
    "gtpu_bad_version",
    "gtpu_ext_bad_length",
    "gtpu_ext_past_end",
    "gtpu_ext_too_many",
    "gtpu_length_mismatch",
    "gtpu_inner_truncated",
    "pfcp_truncated",
    "pfcp_bad_version",
    "pfcp_length_past_end",
    "pfcp_ie_past_end",
    "pfcp_too_many_ies",
    "pfcp_too_many_messages",
};
static_assert(std::size(kNames) == KG_PERR_MAX, "name every enum kg_parse_error value");

}  // namespace

const char* parse_error_name(int err) { return err >= 0 && err < KG_PERR_MAX ? kNames[err] : "unknown"; }

}  // namespace kagami::core
