/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sbi module ABI: what modules/sbi/bpf/sbi.bpf.c writes and
 * modules/sbi/sbi.cc reads. Plain C, compiled by both sides:
 *   - BPF:  UAPI headers (<linux/types.h>) first, then this header;
 *   - C++:  #include <linux/types.h> first, then this header.
 *
 * The kernel side only copies: TCP payload of watched connections (TC live,
 * XDP over replay batches) goes up the ring in chunks of at most
 * SBI_CHUNK bytes, each with its connection tuple and TCP sequence number.
 * Reassembly, HTTP/2 framing, HPACK and HTTP/1.1 parsing are userspace
 * (modules/sbi/decoder.h).
 *
 * Rules (docs/abi.md): explicit padding, no implicit holes (checked against
 * sbi.bpf.o's BTF by the generated sbi_abi_layout_test); enums append-only;
 * the map names below are part of the ABI.
 */
#ifndef KAGAMI_MODULES_SBI_ABI_H
#define KAGAMI_MODULES_SBI_ABI_H

#include "kagami/abi/events.h"

/* Map names (kernel map names keep 15 characters). */
#define SBI_MAP_RING "sbi_ring"         /* RINGBUF of struct sbi_seg records */
#define SBI_MAP_DROPS "sbi_drops"       /* PERCPU_ARRAY[KG_DROP__MAX] of __u64 */
#define SBI_MAP_COUNTERS "sbi_counters" /* PERCPU_ARRAY[SBI_CTR_MAX] of __u64 */
#define SBI_MAP_CONFIG "sbi_config"     /* ARRAY[1] of struct sbi_config, written by configure() */
#define SBI_MAP_CIDRS "sbi_cidrs"       /* LPM_TRIE struct sbi_cidr_key -> __u8 */
#define SBI_MAP_SCRATCH "sbi_scratch"   /* PERCPU_ARRAY[1] of struct sbi_seg: the record being built */
#define SBI_MAP_SSL_ARGS "sbi_ssl_args" /* HASH pid_tgid -> struct sbi_ssl_args: SSL_* entry to return */

/* Default ring size (bytes, a power-of-two multiple of the page size); the
 * module patches max_entries to ring_kb. 4 MiB hold ~2000 full chunks:
 * at 1,000 SBI requests/s of ~1 KiB each, two seconds of userspace stall. */
#define SBI_RING_BYTES_DEFAULT (4 * 1024 * 1024)

/* Payload bytes per record. A 1500-byte MTU segment fits in one record;
 * GSO/GRO super-packets on TC (up to 64 KiB) take several. */
#define SBI_CHUNK 2048
/* Records per packet: 64 KiB (the largest GSO skb and IP datagram) / 2048
 * = 32, plus one for a payload that starts mid-chunk. Payload beyond this is
 * counted (SBI_CTR_PAYLOAD_CUT) and shows up as a gap in userspace. */
#define SBI_MAX_CHUNKS 33

#define SBI_CIDRS_MAX_ENTRIES 256

#define SBI_KIND_SEG 1 /* hdr.kind of a struct sbi_seg */

/* sbi_seg.flags */
#define SBI_SEG_SYN 0x01
#define SBI_SEG_FIN 0x02
#define SBI_SEG_RST 0x04
#define SBI_SEG_ACK 0x08
#define SBI_SEG_TLS 0x10       /* plaintext from the libssl uprobes, see below */
#define SBI_SEG_TLS_WRITE 0x20 /* TLS: the process wrote it (SSL_write*), else read it */

/* sbi_seg.source */
#define SBI_SRC_TC_INGRESS 0
#define SBI_SRC_TC_EGRESS 1
#define SBI_SRC_REPLAY 2
#define SBI_SRC_TLS 3

/* One chunk of TCP payload (or a SYN/FIN/RST without payload). hdr.len is
 * offsetof(data) + data_len; hdr.mono_ns is the packet's time (the capture
 * timestamp in replay). TLS plaintext records (flags SBI_SEG_TLS) carry the
 * SSL* in the first 8 bytes of saddr (host order), the process id (tgid) in
 * ifindex, and no ports, addresses or sequence numbers: SSL_read/SSL_write
 * hand over one ordered byte stream per SSL object and direction. */
struct sbi_seg {
	struct kg_event_hdr hdr;
	__u8 saddr[16];    /* IPv4 mapped to ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u16 sport;       /* host order */
	__u16 dport;
	__u32 seq;         /* TCP sequence number of data[0] */
	__u32 data_len;    /* payload bytes in this record */
	__u32 payload_len; /* TCP payload bytes of the whole packet */
	__u8 flags;        /* SBI_SEG_* */
	__u8 family;       /* 4 or 6 */
	__u8 source;       /* SBI_SRC_* */
	__u8 pad;
	__u32 ifindex;
	__u8 data[SBI_CHUNK];
};

#define SBI_SEG_HDR_BYTES (sizeof(struct sbi_seg) - SBI_CHUNK)

/* sbi_config.flags */
#define SBI_CFG_ACTIVE 0x1 /* configure() ran: live programs copy nothing before */
#define SBI_CFG_PORTS 0x2  /* port_bits restricts (else any port) */
#define SBI_CFG_CIDRS 0x4  /* sbi_cidrs restricts (else any address) */

/* What an SSL_* entry probe keeps for its return probe. */
struct sbi_ssl_args {
	__u64 ssl;
	__u64 buf;
	__u64 out_len; /* SSL_*_ex: the size_t* the byte count is written to; 0 otherwise */
	__u32 write;
	__u32 pad;
};

struct sbi_config {
	__u32 flags;
	__u32 pad;
	__u64 port_bits[1024]; /* bit p: TCP port p (either end) is watched */
};

struct sbi_cidr_key {
	__u32 prefixlen; /* over the 128-bit mapped address */
	__u8 addr[16];
};

enum sbi_counter {
	SBI_CTR_TCP = 0,          /* TCP packets looked at */
	SBI_CTR_WATCHED = 1,      /* of which on a watched port/CIDR */
	SBI_CTR_RECORDS = 2,      /* records written to the ring */
	SBI_CTR_BYTES = 3,        /* payload bytes written */
	SBI_CTR_PAYLOAD_CUT = 4,  /* packets whose payload exceeded SBI_MAX_CHUNKS records */
	SBI_CTR_NOT_PARSED = 5,   /* frames the L2-L4 parse refused (truncated, ...) */
	SBI_CTR_REPLAY_FRAMES = 6, /* frames walked by sbi_replay */
	SBI_CTR_REPLAY_BAD_BATCH = 7,
	SBI_CTR_MAX = 8,
};

#endif /* KAGAMI_MODULES_SBI_ABI_H */
