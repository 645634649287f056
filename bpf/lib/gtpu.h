/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * gtpu.h: GTPv1-U header parsing (3GPP TS 29.281), for N3/N9 (and S1-U/S5).
 *
 * Contract:
 *   - gtpu_parse() reads the GTP-U header at c->off (the UDP payload) and
 *     fills struct gtpu_info: flags, message type, length field, TEID,
 *     sequence number, the extension header chain (types in order, at most
 *     GTPU_MAX_EXT of them) and, from a PDU Session Container (TS 38.415),
 *     the PDU type (0 DL, 1 UL) and QFI; payload_off is where the T-PDU
 *     (inner IP packet) starts.
 *   - Lengths come from the packet, never from the header alone: the chain
 *     walk is bounded by the packet end, an extension header of length 0
 *     (which would never advance) is malformed, and a chain longer than
 *     GTPU_MAX_EXT is malformed rather than silently cut.
 *   - A length field that disagrees with the UDP length is not an error here:
 *     the caller decides (tshark still decodes such packets, and so do we).
 */
#ifndef KAGAMI_BPF_LIB_GTPU_H
#define KAGAMI_BPF_LIB_GTPU_H

#include "lib/parse.h"

#include "kagami/abi/gtpu.h" /* message types, flags and walk limits, shared with C++ */

struct gtpu_info {
	__u8 flags;
	__u8 msg_type;
	__u16 length;      /* length field: bytes after the 8-byte mandatory header */
	__u32 teid;
	__u16 seq;
	__u8 n_ext;
	__u8 has_psc;      /* a PDU Session Container was found */
	__u8 pdu_type;     /* from the container: 0 DL, 1 UL */
	__u8 qfi;
	__u8 pad[2];
	__u8 ext_types[GTPU_MAX_EXT];
	__u32 payload_off; /* first byte after all GTP headers */
};

static __always_inline int gtpu_parse(const struct cursor *c, struct gtpu_info *g)
{
	__u8 *h = cur_ptr(c, c->off, 8);
	__u32 off;
	__u8 next;
	int i;

	if (!h)
		return KG_PERR_GTPU_TRUNCATED;
	g->flags = h[0];
	if ((h[0] >> 5) != 1)
		return KG_PERR_GTPU_BAD_VERSION;
	g->msg_type = h[1];
	g->length = ((__u16)h[2] << 8) | h[3];
	g->teid = ((__u32)h[4] << 24) | ((__u32)h[5] << 16) | ((__u32)h[6] << 8) | h[7];
	off = c->off + 8;
	g->payload_off = off;
	if (!(h[0] & (GTPU_FLAG_PN | GTPU_FLAG_S | GTPU_FLAG_E)))
		return 0;
	/* Any of E, S, PN: sequence number, N-PDU number, next type present. */
	h = cur_ptr(c, off, 4);
	if (!h)
		return KG_PERR_GTPU_TRUNCATED;
	g->seq = ((__u16)h[0] << 8) | h[1];
	next = (g->flags & GTPU_FLAG_E) ? h[3] : 0;
	off += 4;
	/* +1: the extra iteration detects a chain longer than the bound. */
	for (i = 0; i < GTPU_MAX_EXT + 1; i++) {
		__u32 len;
		__u8 *e;

		if (!next)
			break;
		if (i == GTPU_MAX_EXT)
			return KG_PERR_GTPU_EXT_TOO_MANY;
		if (!cur_widen(&off))
			return KG_PERR_GTPU_EXT_PAST_END;
		e = cur_ptr(c, off, 4);
		if (!e)
			return KG_PERR_GTPU_EXT_PAST_END;
		len = (__u32)e[0] * 4;
		if (!len)
			return KG_PERR_GTPU_EXT_BAD_LENGTH;
		g->ext_types[i] = next;
		g->n_ext = i + 1;
		if (next == GTPU_EXT_PDU_SESSION_CONTAINER) {
			/* octet 1: PDU type << 4; octet 2: (PPP, RQI | spare) QFI */
			g->has_psc = 1;
			g->pdu_type = e[1] >> 4;
			g->qfi = e[2] & 0x3f;
		}
		e = cur_ptr(c, off + len - 1, 1);
		if (!e)
			return KG_PERR_GTPU_EXT_PAST_END;
		next = e[0];
		off += len;
	}
	g->payload_off = off;
	return 0;
}

#endif /* KAGAMI_BPF_LIB_GTPU_H */
