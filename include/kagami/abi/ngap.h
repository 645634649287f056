/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NGAP ABI (TS 38.413): the numbers bpf/lib/ngap.h and the n2 module's
 * userspace decoder (modules/n2) both use. Plain C, no type-defining
 * includes. enum ngap_error is append-only (it indexes counters).
 */
#ifndef KAGAMI_ABI_NGAP_H
#define KAGAMI_ABI_NGAP_H

#define NGAP_SCTP_PPID 60 /* TS 38.412 section 7 */

/* NGAP-PDU CHOICE index (TS 38.413 section 9.4.2). */
#define NGAP_PDU_INITIATING 0
#define NGAP_PDU_SUCCESSFUL 1
#define NGAP_PDU_UNSUCCESSFUL 2

/* ProtocolIE-IDs the walks look for (TS 38.413 section 9.4.7). */
#define NGAP_IE_AMF_UE_NGAP_ID 10
#define NGAP_IE_NAS_PDU 38
#define NGAP_IE_RAN_UE_NGAP_ID 85

/* Why an NGAP message (or its SCTP carrier) was not walked to the end. */
enum ngap_error {
	NGAP_OK = 0,
	NGAP_E_SHORT = 1,           /* fewer bytes than the PDU header */
	NGAP_E_PDU_EXTENSION = 2,   /* a CHOICE index beyond the three root alternatives */
	NGAP_E_LEN_PAST_END = 3,    /* an APER length runs past the message or the open type */
	NGAP_E_LEN_FRAGMENTED = 4,  /* an APER length >= 16384 (fragmented form): never in NGAP on SCTP */
	NGAP_E_IE_COUNT_LIES = 5,   /* the IE count disagrees with the bytes of the container */
	NGAP_E_TOO_MANY_IES = 6,    /* more IEs than the walk's bound (NGAP_MAX_IES) */
	NGAP_E_NAS_CUT = 7,         /* the NAS-PDU's length runs past its IE */
	NGAP_E_BAD_ID = 8,          /* a UE NGAP ID with an impossible length */
	NGAP_E_TRUNCATED_COPY = 9,  /* the message is longer than the copy the kernel keeps */
	NGAP_E__MAX = 10,
};

/*
 * IEs walked at the top level of a message. The largest NGAP messages
 * (HandoverRequest, InitialContextSetupRequest) define under 35 top-level
 * IEs, each present at most once (TS 38.413 section 9.2); 64 leaves room for
 * extensions. A container claiming more is counted NGAP_E_TOO_MANY_IES.
 */
#define NGAP_MAX_IES 64

/* Bytes of one NGAP message the kernel copies (and walks): the messages
 * that carry NAS (Initial UE Message, UL/DL NAS Transport, Initial Context
 * Setup, PDU Session Resource Setup) are a few hundred bytes; a longer one
 * is walked over its first NGAP_COPY_MAX bytes and flagged truncated.
 * A power of two: indexes are masked with NGAP_COPY_MAX - 1. */
#define NGAP_COPY_MAX 2048

#endif /* KAGAMI_ABI_NGAP_H */
