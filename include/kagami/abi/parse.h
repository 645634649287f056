/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parse errors shared by every packet parser in bpf/lib (Ethernet, VLAN, IP,
 * UDP/TCP/SCTP, GTP-U, PFCP, and the control-plane parsers to come) and by
 * the C++ that names them (src/core/parse_errors.h). Plain C, no
 * type-defining includes: BPF brings vmlinux.h or the UAPI headers first,
 * C++ brings <linux/types.h>.
 */
#ifndef KAGAMI_ABI_PARSE_H
#define KAGAMI_ABI_PARSE_H

/* Why a shared parser (bpf/lib) gave up on a packet. Append-only: the values
 * index per-module "malformed" counters in maps and pins; a new parser appends
 * its own reasons at the end. Parsing stops at the first
 * problem, so a packet has at most one reason. */
enum kg_parse_error {
	KG_PERR_NONE = 0,
	KG_PERR_ETH_TRUNCATED,
	KG_PERR_VLAN_TRUNCATED,
	KG_PERR_VLAN_TOO_MANY,           /* more than 4 tags (PARSE_MAX_VLAN) */
	KG_PERR_IPV4_TRUNCATED,
	KG_PERR_IPV4_BAD_IHL,            /* IHL < 5 */
	KG_PERR_IPV4_BAD_TOTAL_LENGTH,   /* total length < header length */
	KG_PERR_IPV6_TRUNCATED,
	KG_PERR_IPV6_EXT_TRUNCATED,      /* extension header past the packet */
	KG_PERR_IPV6_EXT_TOO_MANY,       /* more than 8 extension headers */
	KG_PERR_UDP_TRUNCATED,
	KG_PERR_UDP_BAD_LENGTH,          /* UDP length < 8 */
	KG_PERR_TCP_TRUNCATED,
	KG_PERR_TCP_BAD_DOFF,            /* data offset < 5 */
	KG_PERR_SCTP_TRUNCATED,          /* common header past the packet */
	KG_PERR_SCTP_CHUNK_BAD_LENGTH,   /* chunk length < 4 */
	KG_PERR_SCTP_CHUNK_PAST_END,     /* chunk length points past the packet */
	KG_PERR_SCTP_TOO_MANY_CHUNKS,    /* more than 32 chunks */
	KG_PERR_GTPU_TRUNCATED,          /* mandatory/optional header past the packet */
	KG_PERR_GTPU_BAD_VERSION,        /* not GTPv1 on the GTP-U port */
	KG_PERR_GTPU_EXT_BAD_LENGTH,     /* extension header length 0 */
	KG_PERR_GTPU_EXT_PAST_END,       /* extension header past the packet */
	KG_PERR_GTPU_EXT_TOO_MANY,       /* chain longer than 8 */
	KG_PERR_GTPU_LENGTH_MISMATCH,    /* GTP length + 8 != UDP payload (still counted as GTP-U) */
	KG_PERR_GTPU_INNER_TRUNCATED,    /* inner IP header past the packet */
	KG_PERR_PFCP_TRUNCATED,
	KG_PERR_PFCP_BAD_VERSION,        /* not version 1 */
	KG_PERR_PFCP_LENGTH_PAST_END,    /* message length points past the UDP payload */
	KG_PERR_PFCP_IE_PAST_END,        /* IE length points past the message */
	KG_PERR_PFCP_TOO_MANY_IES,       /* more IEs before the Cause than we walk */
	KG_PERR_PFCP_TOO_MANY_MESSAGES,  /* more than 4 messages in one datagram */
	KG_PERR_MAX
};

#endif /* KAGAMI_ABI_PARSE_H */
