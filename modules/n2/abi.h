/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * n2 ABI: what n2.bpf.c writes and modules/n2 reads. Plain C, no
 * type-defining includes (docs/abi.md). The NGAP numbers and the enum of
 * NGAP walk errors are in include/kagami/abi/ngap.h.
 */
#ifndef KAGAMI_MODULE_N2_ABI_H
#define KAGAMI_MODULE_N2_ABI_H

#include "kagami/abi/events.h"
#include "kagami/abi/ngap.h"
#include "kagami/abi/replay.h"

#define N2_MAP_CTR "n2_ctr"
#define N2_MAP_ERR "n2_err"
#define N2_MAP_PROC "n2_proc"
#define N2_MAP_EVENTS "n2_events"
#define N2_MAP_DROPS "n2_drops"
#define N2_MAP_SCRATCH "n2_scratch"

/* Per-CPU counters (n2_ctr, indexed by this enum; append-only). */
enum n2_counter {
	N2_CTR_FRAMES = 0,           /* frames the program saw */
	N2_CTR_SCTP_PACKETS = 1,     /* SCTP packets walked */
	N2_CTR_DATA_CHUNKS = 2,      /* DATA chunks (any PPID) */
	N2_CTR_NGAP_CHUNKS = 3,      /* DATA chunks with PPID 60 */
	N2_CTR_NGAP_PDUS = 4,        /* NGAP PDUs counted by type and procedure */
	N2_CTR_NGAP_WITH_NAS = 5,    /* ... that carry a top-level NAS-PDU */
	N2_CTR_SPLIT_CHUNKS = 6,     /* a DATA chunk holding part of an NGAP message (B/E not both set) */
	N2_CTR_CHUNK_BAD_LENGTH = 7, /* DATA chunk length < 16, or any chunk < 4 */
	N2_CTR_CHUNK_PAST_END = 8,   /* a chunk length points past the packet */
	N2_CTR_TOO_MANY_CHUNKS = 9,  /* more than SCTP_MAX_CHUNKS chunks */
	N2_CTR_SCTP_TRUNCATED = 10,  /* SCTP common header past the packet */
	N2_CTR_EVENTS = 11,          /* messages copied to the ring */
	N2_CTR_REPLAY_BAD_BATCH = 12,
	N2_CTR_L3_MALFORMED = 13,    /* L2/L3 headers the shared parser refused */
	N2_CTR_NGAP_FRAMES = 14,     /* frames with at least one NGAP PDU counted */
	N2_CTR_PFCP_COPIED = 15,     /* PFCP session messages copied up for the 5G context join */
	N2_CTR__MAX = 16,
};

/* n2_proc key: NGAP PDUs by interface, procedure code and PDU type. */
struct n2_proc_key {
	__u32 ifindex;
	__u8 proc;
	__u8 pdu_type;
	__u8 dir;      /* N2_DIR_* */
	__u8 pad;
};
/* Interfaces x 256 procedure codes x 3 PDU types x 2 directions is far
 * beyond real use: NGAP defines ~60 procedures, most with one or two PDU
 * types, so 16384 holds ~50 interfaces' worth. A full map is counted by
 * userspace as the difference between NGAP_PDUS and the map's sum. */
#define N2_PROC_MAX_ENTRIES 16384

#define N2_DIR_INGRESS 0
#define N2_DIR_EGRESS 1

/* Ring: 8 MiB holds ~4000 NGAP messages of average size; replay drains
 * it once at the end of a capture (the largest shared N2 capture has 1306
 * messages), the agent's event loop continuously. */
#define N2_RING_BYTES (8u << 20)

#define N2_EVENT_NGAP 1 /* kg_event_hdr.kind */
/* A PFCP session message (N4, UDP port 8805, message types
 * N2_PFCP_FIRST..N2_PFCP_LAST: session establishment, modification and
 * deletion requests and responses) in the same record layout: msg[] holds
 * the UDP payload, the NGAP fields are zero. The userspace join matches
 * its F-SEIDs and F-TEIDs to the PDU sessions NGAP announced (docs/n2.md,
 * "The 5G context join"). */
#define N2_EVENT_PFCP 2
#define N2_PFCP_PORT 8805
#define N2_PFCP_FIRST 50
#define N2_PFCP_LAST 55

/* n2_msg_event.flags */
#define N2_F_RAN 0x01       /* ran_ue_id is set */
#define N2_F_AMF 0x02       /* amf_ue_id is set */
#define N2_F_NAS 0x04       /* nas_off/nas_len locate a top-level NAS-PDU */
#define N2_F_TRUNCATED 0x08 /* msg_len > copied */
#define N2_F_REPLAY 0x10    /* ts_ns is the capture's time */

/*
 * One NGAP message copied up (variable length: hdr.len = N2_EVENT_FIXED +
 * copied). The kernel has counted it already; userspace decodes the NAS
 * and keeps the per-UE records.
 */
struct n2_msg_event {
	struct kg_event_hdr hdr;
	__u64 ts_ns;       /* capture time (replay) or bpf_ktime_get_ns() */
	__u64 amf_ue_id;
	__u32 ifindex;
	__u32 ran_ue_id;
	__u32 msg_len;     /* the NGAP message (DATA chunk user data) */
	__u32 copied;      /* bytes of msg[] that follow, <= NGAP_COPY_MAX */
	__u32 nas_off;
	__u16 nas_len;
	__u16 stream;      /* SCTP stream identifier */
	__u32 vtag;        /* SCTP verification tag: which association */
	__u8 pdu_type;
	__u8 proc;
	__u8 dir;
	__u8 flags;        /* N2_F_* */
	__u8 err;          /* enum ngap_error of the kernel walk */
	__u8 family;       /* 4 or 6 */
	__u16 sport;
	__u16 dport;
	__u8 pad[2];
	__u8 saddr[16];    /* IPv4 mapped to ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u8 msg[NGAP_COPY_MAX];
};
#define N2_EVENT_FIXED 104 /* offsetof(struct n2_msg_event, msg) */

#endif /* KAGAMI_MODULE_N2_ABI_H */
