/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sctp.h: SCTP common header and chunk walking (RFC 9260), for transport
 * counters and, later, the NGAP parser (DATA chunks with PPID 60).
 *
 * Contract:
 *   - sctp_parse_common() reads the 12-byte common header at c->off.
 *   - sctp_chunk_at() decodes the one chunk at `off` and says where the next
 *     one starts; the caller loops at most SCTP_MAX_CHUNKS times, so a packet
 *     full of tiny chunks can never stall the datapath, and reports
 *     KG_PERR_SCTP_TOO_MANY_CHUNKS past that.
 *   - A chunk whose length is < 4 (which would loop forever on length 0) or
 *     reaches past the packet is malformed; the walk stops there.
 *   - For DATA (0) and I-DATA (64) chunks the TSN, PPID and the offset/length
 *     of the user data are filled in, so an upper-layer parser can start at
 *     data_off without re-parsing.
 */
#ifndef KAGAMI_BPF_LIB_SCTP_H
#define KAGAMI_BPF_LIB_SCTP_H

#include "lib/parse.h"

#define SCTP_CHUNK_DATA 0
#define SCTP_CHUNK_INIT 1
#define SCTP_CHUNK_SACK 3
#define SCTP_CHUNK_ABORT 6
#define SCTP_CHUNK_IDATA 64

#define SCTP_PPID_NGAP 60 /* TS 38.412 section 7 */

/*
 * Chunks walked per packet. A chunk is at least 4 bytes, so a hostile
 * 1500-byte packet could carry ~370; real N2 traffic bundles a few DATA
 * chunks with a SACK (Linux bundles up to what fits the PMTU, typically
 * < 16 NGAP messages). 32 keeps the verifier's work and the per-packet cost
 * bounded while leaving 2x headroom over anything seen in practice.
 */
#define SCTP_MAX_CHUNKS 32

struct sctp_common {
	__u16 sport;
	__u16 dport;
	__u32 vtag;
};

struct sctp_chunk_info {
	__u8 type;
	__u8 flags;
	__u16 len;      /* chunk length field (header included, padding excluded) */
	__u32 next_off; /* where the next chunk starts (4-byte aligned) */
	__u32 tsn;      /* DATA / I-DATA only */
	__u32 ppid;     /* DATA / I-DATA (first fragment) only */
	__u32 data_off; /* user data of DATA / I-DATA */
	__u32 data_len;
};

static __always_inline int sctp_parse_common(struct cursor *c, struct sctp_common *s)
{
	__u8 *h = cur_ptr(c, c->off, 12);

	if (!h)
		return KG_PERR_SCTP_TRUNCATED;
	s->sport = ((__u16)h[0] << 8) | h[1];
	s->dport = ((__u16)h[2] << 8) | h[3];
	s->vtag = ((__u32)h[4] << 24) | ((__u32)h[5] << 16) | ((__u32)h[6] << 8) | h[7];
	c->off += 12;
	return 0;
}

/* Decodes the chunk at `off`; `end` is the end of the SCTP packet. */
static __always_inline int sctp_chunk_at(const struct cursor *c, __u32 off, __u32 end,
					 struct sctp_chunk_info *ci)
{
	__u8 *h = cur_ptr(c, off, 4);
	__u32 len;

	if (!h || off + 4 > end)
		return KG_PERR_SCTP_CHUNK_PAST_END;
	ci->type = h[0];
	ci->flags = h[1];
	len = ((__u32)h[2] << 8) | h[3];
	ci->len = len;
	if (len < 4)
		return KG_PERR_SCTP_CHUNK_BAD_LENGTH;
	if (off + len > end)
		return KG_PERR_SCTP_CHUNK_PAST_END;
	ci->next_off = off + ((len + 3) & ~3U);
	if (ci->type == SCTP_CHUNK_DATA) {
		/* type flags len | TSN | stream id, ssn | PPID | data */
		__u8 *d = cur_ptr(c, off, 16);

		if (!d || len < 16)
			return KG_PERR_SCTP_CHUNK_BAD_LENGTH;
		ci->tsn = be32_at(d + 4);
		ci->ppid = be32_at(d + 12);
		ci->data_off = off + 16;
		ci->data_len = len - 16;
	} else if (ci->type == SCTP_CHUNK_IDATA) {
		/* RFC 8260: TSN | stream id, reserved | MID | PPID or FSN | data */
		__u8 *d = cur_ptr(c, off, 20);

		if (!d || len < 20)
			return KG_PERR_SCTP_CHUNK_BAD_LENGTH;
		ci->tsn = be32_at(d + 4);
		ci->ppid = (ci->flags & 0x02) ? be32_at(d + 16) : 0; /* B bit: PPID, else FSN */
		ci->data_off = off + 20;
		ci->data_len = len - 20;
	}
	return 0;
}

#endif /* KAGAMI_BPF_LIB_SCTP_H */
