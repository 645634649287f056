/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L7 policy ABI: read by l7.bpf.c and by the C++ side (l7_module.cc).
 * HTTP/1.1 requests to policed ports are judged on the server's socket
 * receive path (sockops + sk_skb stream parser/verdict on a sockhash);
 * docs/policy-l7.md has the design.
 */
#ifndef KAGAMI_POLICY_L7_ABI_H
#define KAGAMI_POLICY_L7_ABI_H

#ifndef __BPF__
#include <linux/types.h>
#endif
#include "kagami/abi/events.h"

#define L7_MAP_SOCKS "l7_socks"
#define L7_MAP_CFG "l7_cfg"
#define L7_MAP_PORTS "l7_ports"
#define L7_MAP_RULES "l7_rules"
#define L7_MAP_PEERS "l7_peers"
#define L7_MAP_STATS "l7_stats"
#define L7_MAP_EVENTS "l7_events"
#define L7_MAP_DROPS "l7_drops"

/* A request head (request line + headers + CRLF CRLF) longer than this is
 * denied (reason oversized): it is the most the parser copies and scans. */
#define L7_MAX_HEAD 8192
#define L7_MAX_RULES 1024     /* rules in force (all ports) */
#define L7_MAX_METHOD 16
#define L7_MAX_PATH 128       /* longest path pattern (exact or prefix) */
#define L7_MAX_CONNS 65536    /* judged connections at once (LRU) */
#define L7_EVENT_PATH 96      /* path bytes copied into a flow event */

/* The smallest deny answer (see l7.bpf.c): a request head shorter than this
 * cannot be rewritten into a complete 403 and is dropped with the
 * connection poisoned (reason short_head). */
#define L7_MIN_403 48

/* The HTTP/2 connection preface (RFC 9113 3.4): 24 bytes. */
#define L7_H2_PREFACE_LEN 24

enum l7_path_kind {
	L7_PATH_ANY = 0,
	L7_PATH_EXACT = 1,
	L7_PATH_PREFIX = 2,
};

enum l7_reason {
	L7_R_RULE = 0,        /* allow: a rule matched */
	L7_R_NO_RULE = 1,     /* deny: policed port, no rule matched (default deny) */
	L7_R_OVERSIZED = 2,   /* deny: no end of head within L7_MAX_HEAD bytes */
	L7_R_MALFORMED = 3,   /* deny: no request line (method SP target SP version) */
	L7_R_CHUNKED = 4,     /* deny: Transfer-Encoding on a request: body length unknown */
	L7_R_SHORT_HEAD = 5,  /* deny: head shorter than L7_MIN_403, dropped, connection poisoned */
	L7_R_POISONED = 6,    /* drop: bytes after a deny on a poisoned connection */
	L7_R_BODY = 7,        /* allow: body bytes of an allowed request (Content-Length) */
	L7_R_NO_STATE = 8,    /* deny: a socket in the sockhash without state (LRU evicted) */
	L7_R_H2C = 9,         /* deny: HTTP/2 preface on a policed port: GOAWAY, connection closed */
	L7_R__MAX = 10,
};

enum l7_verdict { L7_V_ALLOW = 0, L7_V_DENY = 1 };

struct l7_cfg {
	/* nrules and base are read together in one aligned 64-bit load: an
	 * in-place update of this one-entry array can never pair one policy's
	 * count with the other's half. */
	__u32 nrules;       /* rules used in l7_rules[base .. base+nrules) */
	__u32 base;         /* 0 or L7_MAX_RULES: the half in force */
	__u32 generation;   /* 0: no policy written yet */
	__u32 sample_rate;  /* flow events per second per CPU (0: none) */
	__u32 sample_burst;
	__u32 pad;
};

/* l7_ports: local port (host order) -> 1. A policed port: every request is
 * judged, and a request no rule allows is denied. */

struct l7_rule {
	__u32 rule_id;     /* the counters' rule label index (1..); 0 is "none" */
	__u32 src_ident;   /* source identity (l7_peers); 0 = any source */
	__u16 port;        /* local (server) port, host order */
	__u8 method_len;   /* 0 = any method */
	__u8 path_kind;    /* enum l7_path_kind */
	__u16 path_len;
	__u16 pad;
	char method[L7_MAX_METHOD];
	char path[L7_MAX_PATH];
};

/* l7_peers: IPv4 address (network order) -> identity. */

struct l7_stat_key {
	__u32 rule;
	__u8 reason;
	__u8 verdict;
	__u16 port;
};
struct l7_stat_val {
	__u64 requests;
	__u64 bytes;
};

#define L7_EVENT_FLOW 1
#define L7_EV_F_PATH_TRUNC 1  /* hdr.flags: the path was longer than L7_EVENT_PATH */

struct l7_event {
	struct kg_event_hdr hdr;
	__u32 rule;
	__u8 reason;
	__u8 verdict;
	__u16 local_port;
	__u32 peer_ip4;     /* network order */
	__u32 local_ip4;
	__u16 peer_port;
	__u16 path_len;     /* bytes in path[] */
	__u32 src_ident;
	__u32 generation;
	char method[L7_MAX_METHOD];
	char path[L7_EVENT_PATH];
};

#endif /* KAGAMI_POLICY_L7_ABI_H */
