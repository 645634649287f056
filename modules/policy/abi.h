/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy ABI: what the policy datapath (bpf/policy.bpf.c) and the module's
 * compiler (compile.cc) both read. Plain C (docs/abi.md).
 *
 * The model (docs/policy.md):
 *   - every address maps to a numeric identity by longest prefix match:
 *     one exact-match hash lookup per prefix length present in the policy
 *     (pol_lens lists them, longest first), so the cost follows the number
 *     of distinct lengths, not the number of prefixes; an identity stands
 *     for one set of "peers" the address satisfies (workload labels,
 *     ipBlocks), computed in userspace;
 *   - a local identity (the workload behind the interface) has flags saying
 *     whether it is isolated for ingress/egress (NetworkPolicy default deny)
 *     and whether deny rules exist for it;
 *   - rules are LPM tries keyed (slot, direction, local, peer, protocol,
 *     port): exact identities and protocol, the port as a prefix, so a port
 *     range (endPort) is a handful of prefixes and any number of rules costs
 *     the same few lookups per packet;
 *   - every key starts with a slot (0/1): userspace writes a whole policy
 *     into the slot not in use, then flips pol_cfg.slot (one 4-byte write,
 *     written last). A packet reads the slot once and is judged by one whole
 *     policy, never by a mix.
 */
#ifndef KAGAMI_MODULE_POLICY_ABI_H
#define KAGAMI_MODULE_POLICY_ABI_H

#include "kagami/abi/events.h"

#define POL_MAP_CFG "pol_cfg"
#define POL_MAP_IDH "pol_idh"
#define POL_MAP_LENS "pol_lens"
#define POL_MAP_LOCAL "pol_local"
#define POL_MAP_ALLOW "pol_allow"
#define POL_MAP_DENY "pol_deny"
#define POL_MAP_CT "pol_ct"
#define POL_MAP_STATS "pol_stats"
#define POL_MAP_EVENTS "pol_events"
#define POL_MAP_DROPS "pol_drops"
#define POL_MAP_RL "pol_rl"
#define POL_MAP_EDGE4 "pol_edge4"
#define POL_MAP_EDGE6 "pol_edge6"
#define POL_MAP_GTP "pol_gtp"
#define POL_MAP_MOD "pol_mod"
#define POL_MAP_MOD_STATS "pol_mod_stats"

/* Prefixes per slot and family: 100 000 CIDR rules (the benchmark) plus
 * workload addresses fit; both slots and both families are in one hash,
 * so four times that. */
#define POL_IP_MAX_ENTRIES 262144
#define POL_IDH_MAX_ENTRIES (2 * POL_IP_MAX_ENTRIES)
/* Rule prefixes: one per (local, peer, proto, port prefix); a port range
 * is at most 30 prefixes. */
#define POL_RULES_MAX_ENTRIES 524288
#define POL_LOCAL_MAX_ENTRIES 65536
#define POL_CT_MAX_ENTRIES 65536     /* LRU: the oldest flows go first */
#define POL_STATS_MAX_ENTRIES 16384  /* (rule, reason, verdict, dir) tuples */
/* XDP deny-list prefixes (KagamiEdgePolicy), both slots: a flood's
 * sources are what the operator lists, so the same scale as rules. */
#define POL_EDGE_MAX_ENTRIES 262144

/* GTP-U rule entries per slot (docs/policy.md, "GTP-U-aware rules"). The
 * datapath walks a slot's entries in order until the first empty one, so
 * the cost of a tunnelled packet grows with the entries in force (about a
 * nanosecond each), never with the CIDR rules. One entry per (selected
 * local identity, rule, inner port range). */
#define POL_GTP_MAX_RULES 128
#define POL_GTPU_PORT 2152 /* TS 29.281: GTP-U on UDP 2152 */

/* Identities with a meaning of their own. */
#define POL_ID_WORLD 0          /* an address in no trie entry */
#define POL_ID_ANY 0xffffffffu  /* a rule's peer: every identity */
#define POL_PROTO_ANY 0         /* a rule's protocol: every protocol */

/* Hook direction, as seen by the workload. TC ingress on the workload's
 * host-side interface carries what the workload sends (its egress). */
enum pol_dir {
	POL_DIR_INGRESS = 0,
	POL_DIR_EGRESS = 1,
};

/* pol_local flags */
#define POL_LOCAL_ISO_INGRESS 1  /* selected by a policy with policyTypes Ingress */
#define POL_LOCAL_ISO_EGRESS 2
#define POL_LOCAL_DENY_INGRESS 4 /* deny rules exist: look them up */
#define POL_LOCAL_DENY_EGRESS 8
#define POL_LOCAL_GTP_INGRESS 16     /* GTP-U rules exist: parse tunnelled packets (UDP 2152) */
#define POL_LOCAL_GTP_EGRESS 32
#define POL_LOCAL_GTP_ISO_INGRESS 64 /* GTP-U allow rules exist: an unmatched T-PDU is dropped */
#define POL_LOCAL_GTP_ISO_EGRESS 128

/* Why a packet got its verdict. Append-only. */
enum pol_reason {
	POL_R_RULE = 0,         /* an allow rule matched (allow) */
	POL_R_NOT_ISOLATED,     /* no policy selects the workload in this direction (allow) */
	POL_R_REPLY,            /* reply of a flow allowed earlier (allow, conntrack) */
	POL_R_NOT_IP,           /* ARP and other non-IP frames (allow) */
	POL_R_NDP,              /* IPv6 neighbour discovery (allow) */
	POL_R_DENY_RULE,        /* a deny rule matched (drop) */
	POL_R_DEFAULT_DENY,     /* isolated and no allow rule matched (drop) */
	POL_R_FRAGMENT,         /* IP fragment towards/from a policed workload (drop) */
	POL_R_MALFORMED,        /* a header length lies (drop) */
	POL_R_NO_POLICY,        /* no policy loaded yet: pol_cfg.generation 0 (allow) */
	POL_R_EDGE_DENY,        /* source on the XDP deny-list at the node edge (drop) */
	POL_R_GTPU_RULE,        /* a GTP-U allow rule matched the tunnelled flow (allow) */
	POL_R_GTPU_DENY,        /* a GTP-U deny rule matched (drop) */
	POL_R_GTPU_DEFAULT_DENY, /* GTP-U allow rules exist and none matched (drop) */
	POL_R_GTPU_MALFORMED,   /* GTP-U or inner header that cannot be trusted (drop) */
	POL_R_GTPU_FRAGMENT,    /* an inner IP fragment: no inner ports (drop) */
	POL_R__MAX,
};

enum pol_verdict {
	POL_V_ALLOW = 0,
	POL_V_DROP = 1,
};

struct pol_cfg {
	__u32 slot;        /* 0 or 1: the slot packets read; written last */
	__u32 generation;  /* policy generation in that slot; 0 = none loaded */
	__u32 sample_rate; /* flow events per second per CPU; 0 = no events */
	__u32 sample_burst;
};

struct pol_ip4_key {
	__u32 prefixlen;   /* 32 + CIDR bits */
	__u8 slot;
	__u8 pad[3];
	__u8 addr[4];      /* network order */
};

struct pol_ip6_key {
	__u32 prefixlen;   /* 32 + CIDR bits */
	__u8 slot;
	__u8 pad[3];
	__u8 addr[16];
};

struct pol_ident {
	__u32 id;
};

/* Address prefix -> identity (pol_idh): exact match on (slot, family,
 * length, address masked to the length). IPv4 in addr[0]. */
struct pol_idh_key {
	__u8 slot;
	__u8 family;       /* 4 or 6 */
	__u8 len;          /* prefix length: 0..32 or 0..128 */
	__u8 pad;
	__u32 addr[4];     /* network order, masked to len */
};

/* The prefix lengths present in pol_idh for one (slot, family), longest
 * first (pol_lens, an array indexed slot * 2 + (family == 6)). */
#define POL_LENS_MAX 132   /* 129 lengths (0..128), rounded up */
struct pol_lens {
	__u32 n;
	__u8 len[POL_LENS_MAX];
};

struct pol_local_key {
	__u32 slot;
	__u32 id;
};

struct pol_local_val {
	__u32 flags;       /* POL_LOCAL_* */
};

/* Multi-byte fields in network order so the port prefix is the key's last
 * bits (an LPM trie compares bytes from the first). */
struct pol_rule_key {
	__u32 prefixlen;   /* 96 + port prefix bits (0..16) */
	__u8 slot;
	__u8 dir;          /* enum pol_dir */
	__u8 proto;        /* IPPROTO_*, or POL_PROTO_ANY */
	__u8 pad;
	__u32 local;       /* network order */
	__u32 peer;        /* network order; POL_ID_ANY for every peer */
	__u16 port;        /* network order; the ICMP type for ICMP/ICMPv6 */
	__u16 pad2;
};
#define POL_RULE_FIXED_BITS 96

struct pol_rule_val {
	__u32 rule;        /* rule id (userspace names it), never 0 */
	__u32 mod;         /* Modify actions: 1 + index into the slot's pol_mod entries; 0: none */
};

/*
 * Modify actions of an allow rule (docs/policy.md, "Modify"), applied to
 * the packets the rule admits (not to conntrack replies): DSCP (a fixed
 * value, or from the QFI of a GTP-U packet through a per-rule QFI -> DSCP
 * map), IPv4 TTL / IPv6 hop limit, and redirect to another interface's
 * egress (bpf_redirect). pol_mod is an array, POL_MOD_MAX per slot.
 */
#define POL_MOD_MAX 64
#define POL_MOD_F_DSCP 1       /* set DSCP to dscp */
#define POL_MOD_F_DSCP_QFI 2   /* set DSCP to qfi_dscp[QFI] (GTP-U packets with a PDU Session Container) */
#define POL_MOD_F_TTL 4        /* set the IPv4 TTL / IPv6 hop limit to ttl */
#define POL_MOD_F_REDIRECT 8   /* bpf_redirect(ifindex, 0): out of that interface */
#define POL_MOD_QFI_KEEP 0xff  /* qfi_dscp entry: leave the DSCP of this QFI as it is */

struct pol_mod {
	__u32 flags;       /* POL_MOD_F_* */
	__u32 ifindex;     /* POL_MOD_F_REDIRECT */
	__u8 dscp;         /* POL_MOD_F_DSCP: 0..63 */
	__u8 ttl;          /* POL_MOD_F_TTL: 1..255 */
	__u8 pad[2];
	__u8 qfi_dscp[64]; /* POL_MOD_F_DSCP_QFI: DSCP by QFI, or POL_MOD_QFI_KEEP */
};

/* What was modified, by rule (pol_mod_stats, per CPU). */
enum pol_mod_action {
	POL_MOD_A_DSCP = 0,
	POL_MOD_A_TTL,
	POL_MOD_A_REDIRECT,
	POL_MOD_A_FAILED,  /* a rewrite helper failed: the packet is dropped */
	POL_MOD_A__MAX,
};

struct pol_mod_stat_key {
	__u32 rule;
	__u32 action;      /* enum pol_mod_action */
};

/* Conntrack: one entry per allowed flow, created where it was judged
 * (ifindex, hook direction); replies are looked up with the tuple reversed
 * on the same interface. Addresses IPv4-mapped for IPv4. */
struct pol_ct_key {
	__u32 ifindex;
	__u8 dir;          /* the hook direction that judged the flow */
	__u8 proto;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;       /* host order; the ICMP echo id for ICMP echo */
	__u16 dport;
};

struct pol_ct_val {
	__u64 seen_ns;
	__u32 rule;
	__u32 pad;
};

struct pol_stat_key {
	__u32 rule;        /* 0 when no rule decided */
	__u8 reason;       /* enum pol_reason */
	__u8 verdict;      /* enum pol_verdict */
	__u8 dir;          /* enum pol_dir */
	__u8 pad;
};

struct pol_stat_val {
	__u64 packets;
	__u64 bytes;
};

/* A GTP-U rule (pol_gtp, ARRAY, POL_GTP_MAX_RULES per slot: slot s owns
 * indexes [s * POL_GTP_MAX_RULES, (s + 1) * POL_GTP_MAX_RULES)). rule == 0
 * ends the slot's list. Inner addresses are IPv4-mapped for IPv4, with
 * masks: a masked compare of 16 bytes matches a prefix of either family
 * (an IPv4 prefix covers ::ffff:0:0/96 too), and an all-zero mask matches
 * every address. */
#define POL_GTP_F_TEID 1     /* match teid */
#define POL_GTP_F_QFI 2      /* match qfi (a PDU Session Container must be present) */
#define POL_GTP_F_PROTO 4    /* match the inner protocol and the port range */

struct pol_gtp_rule {
	__u32 rule;        /* rule id; 0: end of the slot's list */
	__u32 local;       /* local identity the rule applies to */
	__u32 teid;
	__u8 dir;          /* enum pol_dir */
	__u8 deny;
	__u8 flags;        /* POL_GTP_F_* */
	__u8 qfi;
	__u8 proto;        /* inner IP protocol (with POL_GTP_F_PROTO) */
	__u8 mod;          /* Modify actions: 1 + index into the slot's pol_mod entries; 0: none */
	__u8 pad[2];
	__u16 port_lo;     /* inner destination port range, host order; ICMP type */
	__u16 port_hi;
	__u32 src[4];      /* inner source prefix (masked), network order */
	__u32 src_mask[4];
	__u32 dst[4];
	__u32 dst_mask[4];
};

#define POL_EVENT_FLOW 1

/* A sampled flow verdict: every drop and every new allowed flow, through a
 * token bucket (pol_cfg.sample_rate). */
struct pol_flow_event {
	struct kg_event_hdr hdr;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir;
	__u8 verdict;
	__u32 reason;
	__u32 rule;
	__u32 local_id;
	__u32 peer_id;
	__u32 ifindex;
	__u32 generation;
	__u32 pad;
};

#endif
