/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * obs ABI: the only definition of what bpf/obs/obs.bpf.c writes into its maps
 * and src/modules/obs/ reads back. Plain C, compiled by both sides:
 *   - BPF:  #include <linux/types.h> (or vmlinux.h) first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 * It includes nothing that defines types itself.
 *
 * Rules (docs/abi.md, section "obs"):
 *   - every struct has explicit padding, no implicit holes, and its size and
 *     member offsets are checked against the object's BTF by
 *     tests/unit/obs_abi_test.cc;
 *   - enums are append-only: a new counter or malformed reason goes at the
 *     end, before the *_MAX sentinel; values are never reused;
 *   - map names (OBS_MAP_*) are part of the ABI: the module reads maps by name.
 */
#ifndef KAGAMI_ABI_OBS_H
#define KAGAMI_ABI_OBS_H

/* Hook direction. XDP only sees ingress. */
#define OBS_DIR_INGRESS 0
#define OBS_DIR_EGRESS 1
#define OBS_DIR_MAX 2

/* Well-known UDP ports (3GPP TS 29.281 section 4.4.2, TS 29.244 section 7.2). */
#define OBS_GTPU_PORT 2152
#define OBS_PFCP_PORT 8805

/* Log2 latency histogram: bucket i counts latencies in [2^i, 2^(i+1)) us,
 * bucket 0 also holds < 1 us, the last one everything >= 2^(N-1) us (~17 min
 * with N = 31 is far beyond any PFCP T1 retransmission timer). */
#define OBS_LAT_BUCKETS 31

/* Map sizes. LRU maps evict the least recently used entry when full; the
 * *_NEW counters count insertions, so userspace reports evictions as
 * inserted - present. */
#define OBS_TEID_MAX_ENTRIES 16384   /* (teid, msg type, direction) */
#define OBS_PFCP_PENDING_MAX_ENTRIES 8192 /* outstanding PFCP requests */
#define OBS_FRAG_MAX_ENTRIES 1024    /* GTP-U datagrams awaiting their last IPv4 fragment */
#define OBS_SCTP_TSN_MAX_ENTRIES 16384 /* recently seen (association, TSN) */
#define OBS_PFCP_CAUSE_MAX_ENTRIES 1024 /* (msg type, cause, interface slot) */
#define OBS_PFCP_LAT_MAX_ENTRIES 1024   /* (response type, interface slot) */

/* Global counters: percpu array of OBS_DIR_MAX struct obs_counters, one
 * lookup per packet; c[] is indexed by enum obs_counter. */
enum obs_counter {
	OBS_CTR_PACKETS = 0,            /* every frame the program saw */
	OBS_CTR_BYTES,                  /* their frame lengths */
	OBS_CTR_NON_IP,                 /* neither IPv4 nor IPv6 after VLAN tags */
	OBS_CTR_IPV4_FRAGMENTS,         /* IPv4 fragments (first or not) */
	OBS_CTR_IPV6_FRAGMENTS,
	OBS_CTR_GTPU_PACKETS,           /* outermost GTP-U header on UDP 2152 (either port) */
	OBS_CTR_GTPU_FRAME_BYTES,       /* frame length (tshark frame.len); fragmented: the last frame's */
	OBS_CTR_GTPU_UDP_PAYLOAD_BYTES, /* UDP length field - 8 */
	OBS_CTR_GTPU_LEN_FIELD_BYTES,   /* GTP length field */
	OBS_CTR_GTPU_LEN_MISMATCH,      /* GTP length + 8 != UDP payload length */
	OBS_CTR_GTPU_WITH_EXT,          /* E flag set */
	OBS_CTR_GTPU_WITHOUT_EXT,
	OBS_CTR_GTPU_WITH_SEQ,          /* S flag set */
	OBS_CTR_GTPU_ECHO_REQUEST,      /* type 1 */
	OBS_CTR_GTPU_ECHO_RESPONSE,     /* type 2 */
	OBS_CTR_GTPU_ERROR_INDICATION,  /* type 26 */
	OBS_CTR_GTPU_END_MARKER,        /* type 254 */
	OBS_CTR_GTPU_INNER_IPV4,        /* T-PDU carrying IPv4 */
	OBS_CTR_GTPU_INNER_IPV6,
	OBS_CTR_GTPU_INNER_OTHER,       /* T-PDU with neither (e.g. empty, non-IP PDU session) */
	OBS_CTR_GTPU_TEID_NEW,          /* entries inserted into the teid map */
	OBS_CTR_GTPU_FRAG_FIRST,        /* GTP-U first IPv4 fragments stored in obs_frag */
	OBS_CTR_GTPU_FRAG_COMPLETED,    /* ... whose last fragment arrived and counted the datagram */
	OBS_CTR_PFCP_MESSAGES,          /* every PFCP message (several may share a datagram) */
	OBS_CTR_PFCP_REQUESTS,
	OBS_CTR_PFCP_RESPONSES,
	OBS_CTR_PFCP_RESPONSES_UNMATCHED, /* response whose request we did not see */
	OBS_CTR_PFCP_PENDING_NEW,       /* requests inserted into the pending map */
	OBS_CTR_PFCP_SESS_EST_ACCEPTED, /* Session Establishment Response, cause 1 */
	OBS_CTR_PFCP_SESS_DEL_ACCEPTED, /* Session Deletion Response, cause 1 */
	OBS_CTR_SCTP_PACKETS,
	OBS_CTR_SCTP_CHUNKS,
	OBS_CTR_SCTP_DATA_CHUNKS,
	OBS_CTR_SCTP_DATA_RETRANSMITTED, /* DATA whose (association, TSN) was seen before */
	OBS_CTR_SCTP_ABORTS,
	OBS_CTR_SCTP_TSN_NEW,           /* entries inserted into the TSN map */
	OBS_CTR_MALFORMED,              /* sum over reasons */
	OBS_CTR_PFCP_IN_ICMP,           /* PFCP quoted in ICMP errors (counted by type, as Wireshark does) */
	OBS_CTR_REPLAY_BAD_BATCH,       /* replay batches whose records ran past the buffer (obs_replay) */
	OBS_CTR_MAX
};

/* Why a packet was counted malformed. Append-only. Parsing stops at the first
 * problem, so a packet has at most one reason. */
enum obs_malformed_reason {
	OBS_MAL_NONE = 0,
	OBS_MAL_ETH_TRUNCATED,
	OBS_MAL_VLAN_TRUNCATED,
	OBS_MAL_VLAN_TOO_MANY,           /* more than 4 tags (PARSE_MAX_VLAN) */
	OBS_MAL_IPV4_TRUNCATED,
	OBS_MAL_IPV4_BAD_IHL,            /* IHL < 5 */
	OBS_MAL_IPV4_BAD_TOTAL_LENGTH,   /* total length < header length */
	OBS_MAL_IPV6_TRUNCATED,
	OBS_MAL_IPV6_EXT_TRUNCATED,      /* extension header past the packet */
	OBS_MAL_IPV6_EXT_TOO_MANY,       /* more than 8 extension headers */
	OBS_MAL_UDP_TRUNCATED,
	OBS_MAL_UDP_BAD_LENGTH,          /* UDP length < 8 */
	OBS_MAL_TCP_TRUNCATED,
	OBS_MAL_TCP_BAD_DOFF,            /* data offset < 5 */
	OBS_MAL_SCTP_TRUNCATED,          /* common header past the packet */
	OBS_MAL_SCTP_CHUNK_BAD_LENGTH,   /* chunk length < 4 */
	OBS_MAL_SCTP_CHUNK_PAST_END,     /* chunk length points past the packet */
	OBS_MAL_SCTP_TOO_MANY_CHUNKS,    /* more than 32 chunks */
	OBS_MAL_GTPU_TRUNCATED,          /* mandatory/optional header past the packet */
	OBS_MAL_GTPU_BAD_VERSION,        /* not GTPv1 on the GTP-U port */
	OBS_MAL_GTPU_EXT_BAD_LENGTH,     /* extension header length 0 */
	OBS_MAL_GTPU_EXT_PAST_END,       /* extension header past the packet */
	OBS_MAL_GTPU_EXT_TOO_MANY,       /* chain longer than 8 */
	OBS_MAL_GTPU_LENGTH_MISMATCH,    /* GTP length + 8 != UDP payload (still counted as GTP-U) */
	OBS_MAL_GTPU_INNER_TRUNCATED,    /* inner IP header past the packet */
	OBS_MAL_PFCP_TRUNCATED,
	OBS_MAL_PFCP_BAD_VERSION,        /* not version 1 */
	OBS_MAL_PFCP_LENGTH_PAST_END,    /* message length points past the UDP payload */
	OBS_MAL_PFCP_IE_PAST_END,        /* IE length points past the message */
	OBS_MAL_PFCP_TOO_MANY_IES,       /* more IEs before the Cause than we walk */
	OBS_MAL_PFCP_TOO_MANY_MESSAGES,  /* more than 4 messages in one datagram */
	OBS_MAL_MAX
};

/* Appending a counter grows these values; the program manager carries old
 * values over with MapMigration::Extend. */
struct obs_counters {
	__u64 c[OBS_CTR_MAX];
};

/* Malformed packets by reason: percpu array of OBS_DIR_MAX. */
struct obs_malformed_counts {
	__u64 c[OBS_MAL_MAX];
};

/*
 * Interface slots. Counters that carry an interface label are indexed by a
 * small slot number instead of the ifindex, so they live in per-CPU arrays
 * (an inlined lookup) instead of hashes (a hash lookup per packet cost ~6 ns
 * of a ~60 ns GTP-U fast path). The obs module gives each configured
 * interface a slot, 1..OBS_IF_SLOTS-1 in config order, and writes
 * obs_ifslot: entry ifindex % OBS_IFSLOT_TABLE, or the next one when two
 * interfaces collide. A packet whose ifindex is in neither entry (replay,
 * an interface not configured) counts under slot 0, "other".
 */
#define OBS_IF_SLOTS 16
#define OBS_IFSLOT_TABLE 256

struct obs_ifslot {
	__u32 ifindex;  /* 0: free */
	__u32 slot;
};

/* Transport counters per interface: percpu array of obs_pkt_bytes indexed
 * by (slot * OBS_DIR_MAX + dir) * OBS_L4_CLASSES + class. */
enum obs_l4_class {
	OBS_L4_NON_IP,
	OBS_L4_TCP,
	OBS_L4_UDP,
	OBS_L4_SCTP,
	OBS_L4_ICMP,
	OBS_L4_ICMPV6,
	OBS_L4_ESP,
	OBS_L4_GRE,
	OBS_L4_OTHER_IP,
	OBS_L4_CLASS_MAX
};
#define OBS_L4_CLASSES 16 /* room to add classes without resizing the map */
#define OBS_IFACE_SLOTS (OBS_IF_SLOTS * OBS_DIR_MAX * OBS_L4_CLASSES)

struct obs_pkt_bytes {
	__u64 packets;
	__u64 bytes;
};

/* GTP-U per TEID: LRU percpu hash. One entry per (TEID, message type,
 * direction, interface slot), so by_message_type per TEID is exact. */
struct obs_teid_key {
	__u32 teid;
	__u8 msg_type;
	__u8 dir;
	__u8 ifslot;
	__u8 pad;
};

/* GTP-U and PFCP messages by type and interface: percpu arrays of u64
 * indexed by slot * 256 + message type. */
#define OBS_MSG_SLOTS (OBS_IF_SLOTS * 256)

struct obs_teid_value {
	__u64 packets;
	__u64 frame_bytes;
	__u64 udp_payload_bytes;
	__u64 gtp_length_bytes;
};

/* GTP-U per QFI: percpu array indexed by
 * (dir * 2 + pdu_type) * 64 + qfi, pdu_type 0 = DL, 1 = UL (TS 38.415). */
#define OBS_QFI_SLOTS (OBS_DIR_MAX * 2 * 64)
/* The obs_qfi map holds OBS_QFI_SLOTS per interface slot:
 * index ifslot * OBS_QFI_SLOTS + the above. */
#define OBS_QFI_ENTRIES (OBS_IF_SLOTS * OBS_QFI_SLOTS)

/* IPv4 fragments of a GTP-U datagram. The first fragment carries the GTP
 * header; Wireshark counts the datagram only once reassembly completes, in
 * the frame that completes it (its frame length, not the first one's). So
 * the first fragment stores what it parsed here and the last fragment
 * counts it; a datagram whose last fragment never comes is not counted
 * (OBS_CTR_GTPU_FRAG_FIRST - OBS_CTR_GTPU_FRAG_COMPLETED of them). */
struct obs_frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct obs_frag_value {
	__u32 teid;
	__u16 gtp_length;   /* GTP length field */
	__u16 udp_payload;  /* UDP length field - 8 */
	__u8 msg_type;
	__u8 flags;         /* GTP flags octet */
	__u8 n_ext;
	__u8 has_psc;
	__u8 pdu_type;
	__u8 qfi;
	__u8 pad[2];
	__u8 ext_types[8];  /* GTPU_MAX_EXT */
};

/* PFCP request awaiting its response: LRU hash keyed by the requester's and
 * the responder's addresses (IPv4 mapped into IPv6 ::ffff:a.b.c.d) and the
 * sequence number (TS 29.244 section 7.6: a response carries its request's
 * sequence number). A response looks the key up with its destination as
 * requester and its source as responder. The peer is part of the key so
 * that one node's exchanges with different peers never meet (a node may
 * reuse a sequence number towards another peer). */
struct obs_pfcp_pending_key {
	__u8 requester[16];
	__u8 responder[16];
	__u32 seq;
	__u32 pad;
};

struct obs_pfcp_pending_value {
	__u64 ts_ns;
	__u8 msg_type;
	__u8 pad[7];
};

/* PFCP cause values per message type and interface slot: percpu hash. */
struct obs_pfcp_cause_key {
	__u8 msg_type;
	__u8 cause;
	__u8 ifslot;
	__u8 pad;
};

/* Response latency per response message type and interface slot: percpu
 * hash of struct obs_latency_hist (an array of 16 slots x 256 types would
 * be 1.1 MB per CPU for the few pairs that occur). */
struct obs_pfcp_lat_key {
	__u8 msg_type;
	__u8 ifslot;
	__u16 pad;
};

struct obs_latency_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 buckets[OBS_LAT_BUCKETS];
	__u64 pad;
};

/* SCTP DATA chunks by payload protocol id: percpu array of u64 indexed by
 * PPID, PPIDs >= OBS_SCTP_PPID_OTHER share the last slot. 128 covers every
 * 3GPP/IETF signalling PPID in use (S1AP 18, X2AP 27, NGAP 60, XnAP 61,
 * F1AP 62, E1AP 64, Diameter 46/47, M3UA 3). */
#define OBS_SCTP_PPID_SLOTS 128
#define OBS_SCTP_PPID_OTHER (OBS_SCTP_PPID_SLOTS - 1)
/* obs_sctp_chunk and obs_sctp_ppid hold their arrays per interface slot:
 * index ifslot * 256 + chunk type, ifslot * OBS_SCTP_PPID_SLOTS + PPID. */
#define OBS_SCTP_PPID_ENTRIES (OBS_IF_SLOTS * OBS_SCTP_PPID_SLOTS)

/* Per-interface-slot counters that obs_counters keeps only node-wide:
 * percpu array of OBS_IF_SLOTS struct obs_slot_counters. Append-only. */
enum obs_slot_counter {
	OBS_SCTR_PFCP_SESS_EST_ACCEPTED,
	OBS_SCTR_PFCP_SESS_DEL_ACCEPTED,
	OBS_SCTR_PFCP_RESPONSES_UNMATCHED,
	OBS_SCTR_SCTP_PACKETS,
	OBS_SCTR_SCTP_CHUNKS,
	OBS_SCTR_SCTP_DATA_CHUNKS,
	OBS_SCTR_SCTP_DATA_RETRANSMITTED,
	OBS_SCTR_SCTP_ABORTS,
	OBS_SCTR_MAX
};

struct obs_slot_counters {
	__u64 c[OBS_SCTR_MAX];
};

/* SCTP DATA retransmission detection: LRU hash of recently seen TSNs per
 * association (ports + verification tag identify it in one direction). */
struct obs_sctp_tsn_key {
	__u32 vtag;
	__u32 tsn;
	__u16 sport;
	__u16 dport;
	__u32 pad;
};

/*
 * Replay batches: what `kagami replay` (src/replay/driver.cc) hands the
 * obs_replay program through BPF_PROG_TEST_RUN on XDP, several frames per
 * call, because a test run costs one syscall (~1.2 us on a VM with PTI)
 * whatever the frame. The data buffer is:
 *
 *   struct obs_replay_batch
 *   count x { struct obs_replay_rec, cap_len frame bytes, zero padding to 8 }
 *
 * obs_replay runs every frame through the same per-frame code as obs_xdp
 * (direction ingress, the test-run device's ifindex: 1, lo), with the frame length on the wire and the
 * capture timestamp from its record. A record that runs past the buffer
 * ends the batch and counts OBS_CTR_REPLAY_BAD_BATCH; a buffer without the
 * magic is passed untouched, so the program is harmless if attached.
 */
#define OBS_REPLAY_MAGIC 0x4b475242 /* "KGRB" */
#define OBS_REPLAY_MAX_FRAMES 64    /* records per batch (bound of the BPF loop) */
#define OBS_REPLAY_MAX_OFF 4095     /* record offsets are masked to this (one page) */

struct obs_replay_batch {
	__u32 magic;
	__u32 count;
};

struct obs_replay_rec {
	__u64 ts_ns;     /* capture timestamp */
	__u32 wire_len;  /* frame length on the wire (tshark's frame.len) */
	__u16 cap_len;   /* frame bytes that follow */
	__u16 pad;
};

/* Map names the module reads (part of the ABI). */
#define OBS_MAP_COUNTERS "obs_counters"
#define OBS_MAP_MALFORMED "obs_malformed"
#define OBS_MAP_IFACE "obs_iface"
#define OBS_MAP_IFSLOT "obs_ifslot"
#define OBS_MAP_SLOT_COUNTERS "obs_slot_ctr"
#define OBS_MAP_TEID "obs_teid"
#define OBS_MAP_GTPU_MSG "obs_gtpu_msg"
#define OBS_MAP_GTPU_EXT "obs_gtpu_ext"
#define OBS_MAP_GTPU_PDU_TYPE "obs_gtpu_pdu"
#define OBS_MAP_QFI "obs_qfi"
#define OBS_MAP_FRAG "obs_frag"
#define OBS_MAP_PFCP_MSG "obs_pfcp_msg"
#define OBS_MAP_PFCP_CAUSE "obs_pfcp_cause"
#define OBS_MAP_PFCP_PENDING "obs_pfcp_pend"
#define OBS_MAP_PFCP_LATENCY "obs_pfcp_lat"
#define OBS_MAP_SCTP_CHUNK "obs_sctp_chunk"
#define OBS_MAP_SCTP_PPID "obs_sctp_ppid"
#define OBS_MAP_SCTP_TSN "obs_sctp_tsn"

#endif /* KAGAMI_ABI_OBS_H */
