/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pfcp.h: PFCP header and IE walking (3GPP TS 29.244), for N4 (and Sxa/Sxb).
 *
 * Contract:
 *   - pfcp_parse_header() reads one message header at `off`: version (must
 *     be 1), FO/MP/S flags, message type, length, SEID (when S=1) and the
 *     24-bit sequence number; ies_off/msg_end delimit the IEs. A length that
 *     points past the datagram is reported (KG_PERR_PFCP_LENGTH_PAST_END)
 *     after the header fields are filled, so the caller can still count the
 *     message by type, as Wireshark does, while never walking past the end.
 *   - pfcp_find_cause() walks at most PFCP_MAX_IES top-level IEs looking for
 *     the Cause IE (type 19); an IE whose length reaches past the message is
 *     malformed and ends the walk.
 *   - Several messages may share a datagram (FO flag, section 7.2.2.1); the
 *     caller walks at most PFCP_MAX_MSGS of them.
 */
#ifndef KAGAMI_BPF_LIB_PFCP_H
#define KAGAMI_BPF_LIB_PFCP_H

#include "lib/parse.h"

#include "kagami/abi/pfcp.h" /* message types, IEs and walk limits, shared with C++ */

struct pfcp_hdr {
	__u8 flags;
	__u8 msg_type;
	__u16 length;   /* bytes after the first 4 octets */
	__u32 seq;      /* 24 bits */
	__u64 seid;     /* 0 when S=0 */
	__u32 ies_off;
	__u32 msg_end;  /* off + 4 + length, clamped to the datagram */
};

/* True for messages that get a response (odd node messages 1..9, node
 * report / session set 12, 14, 16 and session 50, 52, 54, 56). */
static __always_inline int pfcp_is_request(__u8 t)
{
	if (t >= 1 && t <= 10)
		return t & 1;
	if (t >= 12 && t <= 17)
		return !(t & 1);
	if (t >= 50 && t <= 57)
		return !(t & 1);
	return 0;
}

static __always_inline int pfcp_is_response(__u8 t)
{
	if (t == 11) /* Version Not Supported Response */
		return 1;
	if ((t >= 1 && t <= 17) || (t >= 50 && t <= 57))
		return !pfcp_is_request(t);
	return 0;
}

/* `end` is the end of the UDP payload. */
static __always_inline int pfcp_parse_header(const struct cursor *c, __u32 off, __u32 end,
					     struct pfcp_hdr *p)
{
	__u8 *h = cur_ptr(c, off, 8);
	__u32 hlen;

	if (!h || off + 8 > end)
		return KG_PERR_PFCP_TRUNCATED;
	p->flags = h[0];
	if ((h[0] >> 5) != 1)
		return KG_PERR_PFCP_BAD_VERSION;
	p->msg_type = h[1];
	p->length = ((__u16)h[2] << 8) | h[3];
	if (h[0] & PFCP_FLAG_S) {
		h = cur_ptr(c, off, 16);
		if (!h || off + 16 > end)
			return KG_PERR_PFCP_TRUNCATED;
		p->seid = ((__u64)be32_at(h + 4) << 32) | be32_at(h + 8);
		p->seq = ((__u32)h[12] << 16) | ((__u32)h[13] << 8) | h[14];
		hlen = 16;
	} else {
		p->seid = 0;
		p->seq = ((__u32)h[4] << 16) | ((__u32)h[5] << 8) | h[6];
		hlen = 8;
	}
	p->ies_off = off + hlen;
	p->msg_end = off + 4 + p->length;
	if (p->length + 4 < hlen) {
		p->msg_end = p->ies_off;
		return KG_PERR_PFCP_TRUNCATED;
	}
	if (p->msg_end > end) {
		p->msg_end = end;
		return KG_PERR_PFCP_LENGTH_PAST_END;
	}
	return 0;
}

/* Returns 0 and sets *cause (or leaves *found 0 when the message has none). */
static __always_inline int pfcp_find_cause(const struct cursor *c, const struct pfcp_hdr *p,
					   __u8 *cause, int *found)
{
	__u32 off = p->ies_off;
	int i;

	*found = 0;
	for (i = 0; i < PFCP_MAX_IES; i++) {
		__u32 type, len;
		__u8 *ie;

		if (off >= p->msg_end)
			return 0;
		if (!cur_widen(&off))
			return KG_PERR_PFCP_IE_PAST_END;
		ie = cur_ptr(c, off, 4);
		if (!ie || off + 4 > p->msg_end)
			return KG_PERR_PFCP_IE_PAST_END;
		type = ((__u32)ie[0] << 8) | ie[1];
		len = ((__u32)ie[2] << 8) | ie[3];
		if (off + 4 + len > p->msg_end)
			return KG_PERR_PFCP_IE_PAST_END;
		if (type == PFCP_IE_CAUSE && len >= 1) {
			ie = cur_ptr(c, off + 4, 1);
			if (!ie)
				return KG_PERR_PFCP_IE_PAST_END;
			*cause = ie[0];
			*found = 1;
			return 0;
		}
		off += 4 + len;
	}
	return off >= p->msg_end ? 0 : KG_PERR_PFCP_TOO_MANY_IES;
}

#endif /* KAGAMI_BPF_LIB_PFCP_H */
