/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ngap.h: the NGAP (TS 38.413, ASN.1 aligned PER) walk of one message held
 * in a buffer of NGAP_COPY_MAX bytes (a map value the caller copied the
 * SCTP DATA chunk's user data into: bpf_skb_load_bytes/bpf_xdp_load_bytes
 * work on paged skbs, and indexes masked to the buffer need no per-read
 * packet bounds for the verifier).
 *
 * Contract:
 *   - ngap_head() decodes the PDU type and procedure code (the first two
 *     octets) and the open type around the protocol IEs; tshark counts a
 *     PDU by these two even when the rest is damaged, and so do we.
 *   - ngap_ie() decodes one top-level IE (the caller loops at most
 *     NGAP_MAX_IES times: the bound and why it suffices are in
 *     include/kagami/abi/ngap.h), taking the RAN/AMF UE NGAP IDs and the
 *     first top-level NAS-PDU; ngap_walk_end() checks the walk's end. Both
 *     return the first problem as an enum ngap_error.
 *   - Lengths are checked against the message length `len` (malformed past
 *     it) and the copied bytes `n` (NGAP_E_TRUNCATED_COPY: not malformed,
 *     just longer than we keep). Every read is masked to the buffer.
 *   - No loops (the ID octets are unrolled, <= 5).
 */
#ifndef KAGAMI_BPF_LIB_NGAP_H
#define KAGAMI_BPF_LIB_NGAP_H

#include "kagami/abi/ngap.h"

#define NGAP_B(b, i) ((__u32)(b)[(i) & (NGAP_COPY_MAX - 1)])

struct ngap_info {
	__u64 amf_ue_id;
	__u32 ran_ue_id;
	__u32 nas_off;   /* first octet of the top-level NAS-PDU */
	__u32 ies_off;   /* first IE */
	__u32 end;       /* end of the IE container (the open type) */
	__u16 ie_count;  /* what the container says */
	__u16 nas_len;
	__u8 pdu_type;
	__u8 proc;
	__u8 has_ran;
	__u8 has_amf;
	__u8 has_nas;
	__u8 pad[7];
};

/* An APER length determinant (X.691 11.9) at *off, not past `end`. */
static __always_inline int ngap_len(const __u8 *b, __u32 *off, __u32 end, __u32 *len)
{
	__u32 o = *off, v;

	if (o >= end)
		return NGAP_E_LEN_PAST_END;
	v = NGAP_B(b, o);
	if (!(v & 0x80)) {
		*len = v;
		*off = o + 1;
		return 0;
	}
	if ((v & 0xc0) == 0x80) {
		if (o + 2 > end)
			return NGAP_E_LEN_PAST_END;
		*len = ((v & 0x3f) << 8) | NGAP_B(b, o + 1);
		*off = o + 2;
		return 0;
	}
	return NGAP_E_LEN_FRAGMENTED;
}

/*
 * NGAP-PDU ::= CHOICE { initiatingMessage, successfulOutcome,
 * unsuccessfulOutcome, ... }: one extension bit and a 2-bit index, padded
 * to the octet; then procedureCode (0..255, one octet), criticality (2 bits,
 * padded), and the value as an open type (length + octets) holding
 * SEQUENCE { protocolIEs ProtocolIE-Container, ... }: one extension bit
 * padded to the octet, then the IE count (SIZE(0..65535): two octets).
 * Returns 0 once pdu_type and proc are known and the rest checks out, else
 * an ngap_error (pdu_type/proc are valid whenever the error is not
 * NGAP_E_SHORT or NGAP_E_PDU_EXTENSION).
 */
static __always_inline int ngap_head(const __u8 *b, __u32 len, __u32 n, struct ngap_info *ni)
{
	__u32 off = 3, vlen = 0, v0;
	int err;

	if (len < 3 || n < 3)
		return NGAP_E_SHORT;
	v0 = NGAP_B(b, 0);
	if ((v0 & 0x80) || ((v0 >> 5) & 3) > NGAP_PDU_UNSUCCESSFUL)
		return NGAP_E_PDU_EXTENSION;
	ni->pdu_type = (v0 >> 5) & 3;
	ni->proc = NGAP_B(b, 1);
	err = ngap_len(b, &off, len, &vlen);
	if (err)
		return err;
	if (off + vlen > len)
		return NGAP_E_LEN_PAST_END;
	ni->end = off + vlen;
	if (off + 3 > ni->end)
		return NGAP_E_LEN_PAST_END;
	if (off + 3 > n)
		return NGAP_E_TRUNCATED_COPY;
	ni->ie_count = (NGAP_B(b, off + 1) << 8) | NGAP_B(b, off + 2);
	ni->ies_off = off + 3;
	return 0;
}

/* A constrained whole number of 1..max_octets octets whose octet count - 1
 * sits in the top `bits` bits of the first octet (X.691 11.5.7.4): RAN UE
 * NGAP ID (0..2^32-1: 2 bits, <= 4 octets), AMF UE NGAP ID (0..2^40-1:
 * 3 bits, <= 5 octets). */
static __always_inline int ngap_uint(const __u8 *b, __u32 off, __u32 vlen, __u32 bits,
				     __u32 max_octets, __u64 *out)
{
	__u32 k = (NGAP_B(b, off) >> (8 - bits)) + 1, i;
	__u64 v = 0;

	if (k > max_octets || 1 + k > vlen)
		return NGAP_E_BAD_ID;
	/* Unrolled: at most 5 octets. */
#pragma unroll
	for (i = 0; i < 5; i++)
		if (i < k)
			v = (v << 8) | NGAP_B(b, off + 1 + i);
	*out = v;
	return 0;
}

/* One top-level IE at *off; fills ni and moves *off past it. */
static __always_inline int ngap_ie(const __u8 *b, __u32 *off, __u32 n, struct ngap_info *ni)
{
	__u32 o = *off, id, vlen = 0, no, nl = 0;
	__u64 v;
	int err;

	if (o + 3 > ni->end)
		return NGAP_E_IE_COUNT_LIES;
	if (o + 3 > n)
		return NGAP_E_TRUNCATED_COPY;
	/* id (0..65535: two octets), criticality (2 bits, padded) */
	id = (NGAP_B(b, o) << 8) | NGAP_B(b, o + 1);
	o += 3;
	err = ngap_len(b, &o, ni->end, &vlen);
	if (err)
		return err;
	if (o + vlen > ni->end)
		return NGAP_E_LEN_PAST_END;
	if (o + vlen > n)
		return NGAP_E_TRUNCATED_COPY;
	if (id == NGAP_IE_NAS_PDU && !ni->has_nas) {
		/* NAS-PDU ::= OCTET STRING: its own length inside the open type */
		no = o;
		if (ngap_len(b, &no, o + vlen, &nl) || no + nl > o + vlen)
			return NGAP_E_NAS_CUT;
		ni->nas_off = no;
		ni->nas_len = nl;
		ni->has_nas = 1;
	} else if (id == NGAP_IE_RAN_UE_NGAP_ID) {
		err = ngap_uint(b, o, vlen, 2, 4, &v);
		if (err)
			return err;
		ni->ran_ue_id = (__u32)v;
		ni->has_ran = 1;
	} else if (id == NGAP_IE_AMF_UE_NGAP_ID) {
		err = ngap_uint(b, o, vlen, 3, 5, &v);
		if (err)
			return err;
		ni->amf_ue_id = v;
		ni->has_amf = 1;
	}
	*off = (o + vlen) & 0xffff; /* < NGAP_COPY_MAX here; the mask bounds the loop's state */
	return 0;
}

/*
 * After the IE walk: `walked` IEs were taken and the next one would start
 * at `off`. The caller's loop runs at most NGAP_MAX_IES times (the bound
 * and why it suffices: include/kagami/abi/ngap.h), calling ngap_ie() once
 * per iteration, best from a global function so that the verifier checks
 * the IE body once rather than once per iteration and path.
 */
static __always_inline int ngap_walk_end(const struct ngap_info *ni, __u32 walked, __u32 off)
{
	if (walked < ni->ie_count)
		return NGAP_E_TOO_MANY_IES;
	/* The count said fewer IEs than the container holds. */
	if (off != ni->end)
		return NGAP_E_IE_COUNT_LIES;
	return 0;
}

#endif /* KAGAMI_BPF_LIB_NGAP_H */
