// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy: L3/L4 network policy at TC on a workload's host-side interface.
 *
 * TC ingress on that interface carries what the workload sends (judged by
 * its egress policy, the workload is the source); TC egress carries what it
 * receives (its ingress policy, the workload is the destination). Each
 * packet is judged by one whole policy: the slot in pol_cfg is read once
 * (modules/policy/abi.h).
 *
 * Order of decisions (docs/policy.md):
 *   non-IP -> allow; a header whose length lies -> drop (malformed);
 *   no policy loaded -> allow; IPv6 neighbour discovery -> allow;
 *   a reply of a flow this interface allowed -> allow (conntrack);
 *   a fragment towards/from a workload with any policy -> drop (a port
 *   decision is impossible without reassembly);
 *   a deny rule -> drop; not isolated -> allow; an allow rule -> allow;
 *   else drop (NetworkPolicy default deny for selected pods).
 * Every verdict is counted by (rule, reason, verdict, direction); drops and
 * new allowed flows are sampled as flow events through a token bucket.
 *
 * Composition: the module attaches at TC order 50, before the passive
 * observers (obs at 100). An allowed packet returns TC_ACT_UNSPEC, which
 * hands it to the next program on the hook (TC_ACT_OK would end the chain
 * and hide it from obs); a denied one TC_ACT_SHOT.
 *
 * No vmlinux.h: UAPI and wire formats only (as obs.bpf.c).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "modules/policy/abi.h"
#include "lib/parse.h"
#include "lib/gtpu.h"
#include "lib/events.h"
#include "lib/ratelimit.h"
#include "lib/xdp_chain.h"
#include "policy_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Bytes made linear before parsing: Ethernet, two VLAN tags, IPv6 with a
 * few extension headers and the first 8 bytes of L4 fit. */
#define POL_PULL_LEN 256 /* also: outer IPv6 + UDP + GTP-U with its extensions + inner IPv6 + L4 */
#define POL_CT_REFRESH_NS 1000000000ULL /* refresh an entry's time at most once a second */

struct pol_pkt {
	struct l3l4 m;
	__u16 lport;      /* policy port: L4 destination port, or ICMP type */
	__u16 ct_sport;   /* conntrack ports: L4 ports, or the ICMP echo id twice */
	__u16 ct_dport;
	__u8 icmp_reply;  /* an ICMP echo reply (looked up as a reply only) */
	__u8 ndp;
};

static __always_inline void pol_count(__u32 rule, __u8 reason, __u8 verdict, __u8 dir, __u64 bytes)
{
	struct pol_stat_key k = {.rule = rule, .reason = reason, .verdict = verdict, .dir = dir};
	struct pol_stat_val *v = bpf_map_lookup_elem(&pol_stats, &k);

	if (!v) {
		struct pol_stat_val zero = {};

		/* BPF_NOEXIST: another CPU may have created it meanwhile; either way
		 * the lookup below finds this CPU's copy. */
		bpf_map_update_elem(&pol_stats, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&pol_stats, &k);
		if (!v)
			return; /* the map is full: the stats map size says why */
	}
	v->packets++;
	v->bytes += bytes;
}

/* The slot and the generation in one 64-bit load: userspace rewrites
 * pol_cfg in place (an array map update is a copy into the live value), so
 * two separate reads could pair one switch's slot with the next one's
 * generation, and an event would name a policy the packet was not judged
 * by. The two are adjacent and 8-byte aligned (abi.h); an aligned 64-bit
 * load sees either the old pair or the new one. */
static __always_inline __u32 pol_cfg_read(const struct pol_cfg *cfg, __u8 *slot)
{
	const __u64 sg = *(const volatile __u64 *)&cfg->slot;

	*slot = (__u32)sg & 1;
	return (__u32)(sg >> 32);
}

static __always_inline void pol_event(const struct pol_pkt *p, const struct pol_cfg *cfg, __u32 gen, __u8 dir,
				      __u8 verdict, __u8 reason, __u32 rule, __u32 local, __u32 peer,
				      __u32 ifindex)
{
	struct pol_flow_event *e;
	__u32 zero = 0;

	if (!cfg || !cfg->sample_rate)
		return;
	/* Never true (local type ids are never 0); the reference pulls
	 * struct pol_flow_event into the object's BTF: ring records have no
	 * map type of their own, and the ABI layout test reads it there. */
	if (bpf_core_type_id_local(struct pol_flow_event) == 0)
		return;
	if (!kg_ratelimit_allow(&pol_rl, &zero, cfg->sample_rate, cfg->sample_burst, &pol_drops))
		return;
	e = kg_event_reserve(&pol_events, &pol_drops, sizeof(*e), POL_EVENT_FLOW);
	if (!e)
		return;
	__builtin_memcpy(e->saddr, p->m.saddr, 16);
	__builtin_memcpy(e->daddr, p->m.daddr, 16);
	e->sport = p->m.sport;
	e->dport = p->m.dport;
	e->proto = p->m.l4;
	e->family = p->m.family;
	e->dir = dir;
	e->verdict = verdict;
	e->reason = reason;
	e->rule = rule;
	e->local_id = local;
	e->peer_id = peer;
	e->ifindex = ifindex;
	e->generation = gen;
	e->pad = 0;
	kg_event_submit(e);
}

/* What pol_ident_lookup() reads: one address of the packet. */
struct pol_id_arg {
	__u32 addr[4];     /* IPv4 in addr[0] */
	__u8 family;
	__u8 slot;
	__u8 pad[2];
};

/*
 * Longest prefix match by exact lookups, longest length first: one hash
 * lookup per prefix length present in the policy (pol_lens), whatever the
 * number of prefixes, so the cost stays flat as CIDR rules grow (an LPM
 * trie's walk deepens with its entries). A global function: verified once.
 */
__noinline __u32 pol_ident_lookup(const struct pol_id_arg *a)
{
	struct pol_idh_key k = {};
	struct pol_lens *ls;
	struct pol_ident *v;
	__u32 idx, i, w;

	if (!a)
		return POL_ID_WORLD;
	idx = (__u32)(a->slot & 1) * 2 + (a->family == 6);
	ls = bpf_map_lookup_elem(&pol_lens, &idx);
	if (!ls)
		return POL_ID_WORLD;
	k.slot = a->slot;
	k.family = a->family;
	/* At most 129 lengths (0..128); pol_lens.n says how many are present. */
	for (i = 0; i < 129; i++) {
		__u32 len;

		if (i >= ls->n)
			break;
		len = ls->len[i];
		k.len = len;
		for (w = 0; w < 4; w++) {
			const int bits = (int)len - 32 * (int)w;
			const __u32 m = bits <= 0 ? 0 : bits >= 32 ? 0xffffffffu : bpf_htonl(~0u << (32 - bits));

			k.addr[w] = a->addr[w] & m;
		}
		v = bpf_map_lookup_elem(&pol_idh, &k);
		if (v)
			return v->id;
	}
	return POL_ID_WORLD;
}

static __always_inline __u32 pol_ident_of(const struct l3l4 *m, const __u8 *addr, __u8 slot)
{
	struct pol_id_arg a = {.family = m->family, .slot = slot};

	if (m->family == 4)
		__builtin_memcpy(a.addr, addr + 12, 4);
	else
		__builtin_memcpy(a.addr, addr, 16);
	return pol_ident_lookup(&a);
}

/* The four lookups of one rule table: (peer, ANY) x (protocol, ANY). A
 * constant number whatever the number of rules: the LPM trie does the rest
 * (its depth is bounded by the key's 128 bits). Returns the rule id in the
 * low 32 bits and its Modify index (pol_rule_val.mod) in the high ones. */
static __always_inline __u64 pol_rules(void *map, __u8 slot, __u8 dir, __u32 local, __u32 peer,
				       __u8 proto, __u16 port)
{
	struct pol_rule_key k = {
		.prefixlen = POL_RULE_FIXED_BITS + 16,
		.slot = slot,
		.dir = dir,
		.proto = proto,
		.local = bpf_htonl(local),
		.peer = bpf_htonl(peer),
		.port = bpf_htons(port),
	};
	struct pol_rule_val *v;

	v = bpf_map_lookup_elem(map, &k);
	if (!v) {
		k.proto = POL_PROTO_ANY;
		v = bpf_map_lookup_elem(map, &k);
	}
	if (!v) {
		k.peer = bpf_htonl(POL_ID_ANY);
		v = bpf_map_lookup_elem(map, &k);
	}
	if (!v) {
		k.proto = proto;
		v = bpf_map_lookup_elem(map, &k);
	}
	return v ? ((__u64)v->mod << 32) | v->rule : 0;
}

static __always_inline void pol_ct_fill(struct pol_ct_key *k, const struct pol_pkt *p, __u32 ifindex,
					__u8 dir, int reverse)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->ifindex = ifindex;
	k->dir = dir;
	k->proto = p->m.l4;
	if (!reverse) {
		__builtin_memcpy(k->saddr, p->m.saddr, 16);
		__builtin_memcpy(k->daddr, p->m.daddr, 16);
		k->sport = p->ct_sport;
		k->dport = p->ct_dport;
	} else {
		__builtin_memcpy(k->saddr, p->m.daddr, 16);
		__builtin_memcpy(k->daddr, p->m.saddr, 16);
		k->sport = p->ct_dport;
		k->dport = p->ct_sport;
	}
}

/* Fills the L4 part of p. 0, or a kg_parse_error for a header that is cut
 * short or lies about its length. */
static __always_inline int pol_parse_l4(struct cursor *c, struct pol_pkt *p)
{
	struct l3l4 *m = &p->m;
	__u8 *h;

	if (m->frag_later)
		return 0; /* no L4 header: the caller decides on fragments */
	switch (m->l4) {
	case IPPROTO_TCP:
		if (parse_tcp(c, m))
			return KG_PERR_TCP_TRUNCATED;
		break;
	case IPPROTO_UDP:
		return parse_udp(c, m) ?: (p->lport = m->dport, p->ct_sport = m->sport,
					   p->ct_dport = m->dport, 0);
	case IPPROTO_SCTP:
		h = cur_ptr(c, c->off, 12);
		if (!h)
			return KG_PERR_SCTP_TRUNCATED;
		m->sport = be16_at(h);
		m->dport = be16_at(h + 2);
		break;
	case PARSE_IPPROTO_ICMP:
	case PARSE_IPPROTO_ICMPV6:
		h = cur_ptr(c, c->off, 8);
		if (!h)
			return KG_PERR_IPV4_TRUNCATED;
		p->lport = h[0];
		if (m->l4 == PARSE_IPPROTO_ICMP ? (h[0] == 8 || h[0] == 0) : (h[0] == 128 || h[0] == 129)) {
			p->ct_sport = p->ct_dport = be16_at(h + 4);
			p->icmp_reply = m->l4 == PARSE_IPPROTO_ICMP ? h[0] == 0 : h[0] == 129;
		}
		p->ndp = m->l4 == PARSE_IPPROTO_ICMPV6 && h[0] >= 133 && h[0] <= 137;
		return 0;
	default:
		return 0; /* other protocols: port 0, judged by protocol-wide rules */
	}
	p->lport = m->dport;
	p->ct_sport = m->sport;
	p->ct_dport = m->dport;
	return 0;
}

/*
 * GTP-U-aware rules (docs/policy.md). What pol_gtp_tc() reads, and the rule
 * it names. Returns 0 when the tunnel layer has no verdict (not a T-PDU, or
 * no rule matched and no GTP-U allow rule isolates the workload): the outer
 * policy decides alone; 1 when a GTP-U allow rule matched (a->rule); or
 * -reason for a drop (a->rule names a deny rule, else 0).
 */
struct pol_gtp_args {
	__u32 off;         /* the GTP-U header: the UDP payload */
	__u32 udp_payload; /* UDP payload bytes, per a UDP length already checked against IP */
	__u32 local;
	__u32 rule;        /* out */
	__u8 slot;
	__u8 dir;
	__u8 iso;          /* GTP-U allow rules exist for (local, dir) */
	__u8 mod;          /* out: the allow rule's Modify index */
	__u8 qfi;          /* out: from the PDU Session Container */
	__u8 has_qfi;
	__u8 pad[2];
};

static __always_inline int pol_gtp_addr(const __u32 *want, const __u32 *mask, const __u32 *a)
{
	return (a[0] & mask[0]) == want[0] && (a[1] & mask[1]) == want[1] && (a[2] & mask[2]) == want[2] &&
	       (a[3] & mask[3]) == want[3];
}

/* One walk over a slot's GTP-U rules (bpf_loop's context). */
struct pol_gtp_walk {
	__u32 saddr[4];    /* inner addresses, IPv4-mapped for IPv4 */
	__u32 daddr[4];
	__u32 teid;
	__u32 base;        /* the slot's first index */
	__u32 local;
	__u32 allow;       /* out: the first allow rule that matched */
	__u32 deny;        /* out: a deny rule that matched (ends the walk) */
	__u16 lport;
	__u8 l4;
	__u8 dir;
	__u8 has_psc;
	__u8 qfi;
	__u8 mod;          /* out: the allow rule's Modify index */
	__u8 pad;
};

/* The tunnel walk's working state, off the stack: pol_judge's frame and
 * this one together would pass the 512-byte stack limit. */
struct pol_gtp_scratch {
	struct pol_pkt in;
	struct gtpu_info g;
	struct pol_gtp_walk w;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_gtp_scratch);
} pol_gtp_scratch SEC(".maps");

/* bpf_loop callback: 0 goes on, 1 stops. Verified once, whatever the
 * number of iterations (a plain loop over 128 entries with this many
 * branches exceeds the verifier's budget). */
static long pol_gtp_one(__u64 i, void *ctx)
{
	struct pol_gtp_scratch *sc;
	struct pol_gtp_walk *w;
	struct pol_gtp_rule *r;
	__u32 k = 0;

	/* The walk's state is this CPU's scratch (ctx is an unused stack word:
	 * the callback's frame counts against the caller's stack). */
	sc = bpf_map_lookup_elem(&pol_gtp_scratch, &k);
	if (!sc)
		return 1;
	w = &sc->w;
	k = w->base + (__u32)i;
	r = bpf_map_lookup_elem(&pol_gtp, &k);

	if (!r || !r->rule)
		return 1; /* the end of the slot's list */
	if (r->dir != w->dir || r->local != w->local || (!r->deny && w->allow))
		return 0;
	if ((r->flags & POL_GTP_F_TEID) && r->teid != w->teid)
		return 0;
	if ((r->flags & POL_GTP_F_QFI) && (!w->has_psc || r->qfi != w->qfi))
		return 0;
	if ((r->flags & POL_GTP_F_PROTO) && (r->proto != w->l4 || w->lport < r->port_lo || w->lport > r->port_hi))
		return 0;
	if (!pol_gtp_addr(r->src, r->src_mask, w->saddr) || !pol_gtp_addr(r->dst, r->dst_mask, w->daddr))
		return 0;
	if (r->deny) {
		w->deny = r->rule; /* deny wins over any allow, wherever it is listed */
		return 1;
	}
	w->allow = r->rule;
	w->mod = r->mod;
	return 0;
}

static __always_inline int pol_gtp_walk(void *data, void *data_end, struct pol_gtp_args *a)
{
	struct pol_gtp_scratch *sc;
	struct pol_gtp_walk *w;
	struct cursor c = {};
	__u32 end, zero = 0;
	__u8 *h;
	int err;

	sc = bpf_map_lookup_elem(&pol_gtp_scratch, &zero);
	if (!sc)
		return -POL_R_GTPU_MALFORMED;
	__builtin_memset(sc, 0, sizeof(*sc));
	struct gtpu_info *gp = &sc->g;
	struct pol_pkt *in = &sc->in;
	w = &sc->w;

	/* The cursor ends where the UDP datagram ends: nothing past it (padding,
	 * a lying inner length) is read as part of the tunnel. */
	end = a->off + a->udp_payload;
	c.data = data;
	c.data_end = data_end;
	c.size = end;
	c.off = a->off;
	/* A header that is cut, of another version, with an extension chain
	 * past the packet or longer than GTPU_MAX_EXT (gtpu_parse), or whose
	 * length field disagrees with the UDP length: nothing after it can be
	 * trusted, so no rule can be applied, and the default (deny) applies. */
	if (gtpu_parse(&c, gp) || (__u32)gp->length + 8 != a->udp_payload)
		return -POL_R_GTPU_MALFORMED;
	if (gp->msg_type != GTPU_MSG_TPDU)
		return 0; /* echo, error indication, end marker: no UE flow inside */
	c.off = gp->payload_off;
	h = cur_ptr(&c, c.off, 1);
	if (!h)
		return -POL_R_GTPU_MALFORMED;
	if ((h[0] >> 4) == 4) {
		err = parse_ipv4(&c, &in->m);
	} else if ((h[0] >> 4) == 6) {
		err = parse_ipv6_fixed(&c, &in->m);
		if (!err && parse_ipv6_is_ext(in->m.l4))
			err = parse_ipv6_ext(&c, &in->m);
	} else {
		/* Ethernet or unstructured PDU sessions: no inner 5-tuple to judge. */
		return -POL_R_GTPU_MALFORMED;
	}
	if (err || in->m.l4_end > end)
		return -POL_R_GTPU_MALFORMED;
	if (in->m.frag_first || in->m.frag_later)
		return -POL_R_GTPU_FRAGMENT;
	if (pol_parse_l4(&c, in))
		return -POL_R_GTPU_MALFORMED;

	__builtin_memcpy(w->saddr, in->m.saddr, 16);
	__builtin_memcpy(w->daddr, in->m.daddr, 16);
	w->teid = gp->teid;
	w->base = a->slot ? POL_GTP_MAX_RULES : 0;
	w->local = a->local;
	w->lport = in->lport;
	w->l4 = in->m.l4;
	w->dir = a->dir;
	w->has_psc = gp->has_psc;
	w->qfi = gp->qfi;
	/* At most the slot's size; the walk usually ends much earlier, at the
	 * first empty entry (userspace writes one after the last rule). */
	bpf_loop(POL_GTP_MAX_RULES, pol_gtp_one, &zero, 0);
	if (w->deny) {
		a->rule = w->deny;
		return -POL_R_GTPU_DENY;
	}
	if (w->allow) {
		a->rule = w->allow;
		a->mod = w->mod;
		a->qfi = gp->qfi;
		a->has_qfi = gp->has_psc;
		return 1;
	}
	return a->iso ? -POL_R_GTPU_DEFAULT_DENY : 0;
}

/* A global function: the verifier checks the tunnel walk (GTP-U extension
 * chain, inner IPv6 chain, rule list) once, not once per path through the
 * outer parser (see obs.bpf.c, "Global helpers"). */
__noinline int pol_gtp_tc(struct __sk_buff *skb, struct pol_gtp_args *a)
{
	if (!a)
		return -POL_R_GTPU_MALFORMED;
	return pol_gtp_walk((void *)(long)skb->data, (void *)(long)skb->data_end, a);
}

static __always_inline void pol_mod_count(__u32 rule, __u32 action)
{
	struct pol_mod_stat_key k = {.rule = rule, .action = action};
	__u64 *v = bpf_map_lookup_elem(&pol_mod_stats, &k), one = 1;

	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&pol_mod_stats, &k, &one, BPF_NOEXIST);
}

/*
 * The Modify actions of the allow rule that admitted the packet (abi.h):
 * DSCP and TTL / hop limit are rewritten in the outer IP header, the IPv4
 * header checksum updated incrementally (bpf_l3_csum_replace; IPv6 has no
 * header checksum, and neither field is in the TCP/UDP pseudo-header), then
 * the packet goes on (TC_ACT_UNSPEC) or out of another interface
 * (bpf_redirect: TC_ACT_REDIRECT, so later programs on this hook do not see
 * it). A redirect to an interface that has gone since the apply is dropped
 * by the kernel (no device at that index): fail closed, never delivered to
 * the original destination. A helper that fails drops the packet rather
 * than let a half-rewritten header out.
 */
struct pol_mod_args {
	__u32 l3_off;
	__u32 rule;
	__u32 mod;
	__u8 family;
	__u8 slot;
	__u8 qfi;
	__u8 has_qfi;
};

static __always_inline int pol_modify_do(struct __sk_buff *skb, const struct pol_mod_args *m)
{
	__u32 k = (__u32)m->slot * POL_MOD_MAX + m->mod - 1;
	const __u32 l3 = m->l3_off, rule = m->rule, mod = m->mod;
	const __u8 qfi = m->qfi, has_qfi = m->has_qfi;
	struct pol_mod *md;
	int dscp = -1;
	__u8 h[2], n[2];

	if (mod > POL_MOD_MAX)
		return TC_ACT_UNSPEC;
	md = bpf_map_lookup_elem(&pol_mod, &k);
	if (!md)
		return TC_ACT_UNSPEC;
	if (md->flags & POL_MOD_F_DSCP)
		dscp = md->dscp;
	if ((md->flags & POL_MOD_F_DSCP_QFI) && has_qfi && md->qfi_dscp[qfi & 63] != POL_MOD_QFI_KEEP)
		dscp = md->qfi_dscp[qfi & 63] & 63;
	if (dscp >= 0) {
		if (bpf_skb_load_bytes(skb, l3, h, 2))
			goto fail;
		if (m->family == 4) {
			/* version/IHL, TOS: DSCP is the TOS's upper 6 bits, ECN the lower 2. */
			n[0] = h[0];
			n[1] = (__u8)(dscp << 2) | (h[1] & 3);
			if (bpf_l3_csum_replace(skb, l3 + 10, *(__u16 *)h, *(__u16 *)n, 2))
				goto fail;
		} else {
			/* version(4) | traffic class(8) | flow label(20): DSCP spans both bytes. */
			n[0] = (h[0] & 0xf0) | (__u8)(dscp >> 2);
			n[1] = (__u8)((dscp & 3) << 6) | (h[1] & 0x3f);
		}
		if (bpf_skb_store_bytes(skb, l3, n, 2, 0))
			goto fail;
		pol_mod_count(rule, POL_MOD_A_DSCP);
	}
	if (md->flags & POL_MOD_F_TTL) {
		if (m->family == 4) {
			/* TTL and protocol: one 16-bit word of the header checksum. */
			if (bpf_skb_load_bytes(skb, l3 + 8, h, 2))
				goto fail;
			n[0] = md->ttl;
			n[1] = h[1];
			if (bpf_l3_csum_replace(skb, l3 + 10, *(__u16 *)h, *(__u16 *)n, 2) ||
			    bpf_skb_store_bytes(skb, l3 + 8, n, 2, 0))
				goto fail;
		} else {
			n[0] = md->ttl;
			if (bpf_skb_store_bytes(skb, l3 + 7, n, 1, 0))
				goto fail;
		}
		pol_mod_count(rule, POL_MOD_A_TTL);
	}
	/* Already leaving through the target (the redirected packet meets this
	 * program again on the target's own hook, where the same rule matches):
	 * let it go, or it would loop until the kernel's recursion limit. */
	if ((md->flags & POL_MOD_F_REDIRECT) && md->ifindex != skb->ifindex) {
		pol_mod_count(rule, POL_MOD_A_REDIRECT);
		return bpf_redirect(md->ifindex, 0);
	}
	return TC_ACT_UNSPEC;
fail:
	pol_mod_count(rule, POL_MOD_A_FAILED);
	return TC_ACT_SHOT;
}

/* A global function (see pol_gtp_tc): verified once, not on every path of
 * pol_judge that reaches an allow. */
__noinline int pol_modify_tc(struct __sk_buff *skb, const struct pol_mod_args *m)
{
	if (!m)
		return TC_ACT_SHOT;
	return pol_modify_do(skb, m);
}

static __always_inline int pol_modify(struct __sk_buff *skb, const struct l3l4 *m, __u8 slot, __u32 rule,
				      __u32 mod, __u8 qfi, __u8 has_qfi)
{
	struct pol_mod_args a = {
		.l3_off = m->l3_off, .rule = rule, .mod = mod, .family = m->family,
		.slot = slot, .qfi = qfi, .has_qfi = has_qfi,
	};

	return pol_modify_tc(skb, &a);
}

static __always_inline int pol_judge(struct __sk_buff *skb, __u8 dir)
{
	struct pol_pkt p = {};
	struct cursor c = {};
	const __u32 ifindex = skb->ifindex;
	const __u64 len = skb->len;
	struct pol_cfg *cfg;
	struct pol_local_val *lv;
	struct pol_local_key lk;
	struct pol_ct_key ck;
	struct pol_ct_val *cv;
	__u32 zero = 0, local = 0, peer = 0, rule = 0, flags, gtp_rule = 0, mod = 0;
	__u8 slot = 0, reason, gtp_mod = 0, qfi = 0, has_qfi = 0;
	__u32 gen;
	int err;

	if ((__u32)(skb->data_end - skb->data) < POL_PULL_LEN && skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < POL_PULL_LEN ? skb->len : POL_PULL_LEN);
	c.data = (void *)(long)skb->data;
	c.data_end = (void *)(long)skb->data_end;
	c.size = skb->len;

	err = parse_l3(&c, &p.m);
	if (!err && p.m.family) {
		/* A total length past the end of the frame is a lie too. */
		if (p.m.l4_end > skb->len)
			err = KG_PERR_IPV4_BAD_TOTAL_LENGTH;
		else
			err = pol_parse_l4(&c, &p);
	}
	if (err) {
		pol_count(0, POL_R_MALFORMED, POL_V_DROP, dir, len);
		return TC_ACT_SHOT;
	}
	if (!p.m.family) {
		pol_count(0, POL_R_NOT_IP, POL_V_ALLOW, dir, len);
		return TC_ACT_UNSPEC;
	}
	cfg = bpf_map_lookup_elem(&pol_cfg, &zero);
	gen = cfg ? pol_cfg_read(cfg, &slot) : 0;
	if (!gen) {
		pol_count(0, POL_R_NO_POLICY, POL_V_ALLOW, dir, len);
		return TC_ACT_UNSPEC;
	}
	if (p.ndp) {
		pol_count(0, POL_R_NDP, POL_V_ALLOW, dir, len);
		return TC_ACT_UNSPEC;
	}

	/* Tunnelled traffic (UDP 2152, either port) to or from a workload with
	 * GTP-U rules: the inner flow is judged first, and before conntrack,
	 * because every packet of a tunnel has the same outer tuple (a reply of
	 * the outer flow says nothing about the UE flow inside). The outer
	 * policy still applies after it. */
	if (p.m.l4 == IPPROTO_UDP && !p.m.frag_first && !p.m.frag_later &&
	    (p.m.sport == POL_GTPU_PORT || p.m.dport == POL_GTPU_PORT)) {
		const __u32 gtpf = dir == POL_DIR_INGRESS ? POL_LOCAL_GTP_INGRESS : POL_LOCAL_GTP_EGRESS;
		const __u32 gtpiso = dir == POL_DIR_INGRESS ? POL_LOCAL_GTP_ISO_INGRESS : POL_LOCAL_GTP_ISO_EGRESS;

		local = pol_ident_of(&p.m, dir == POL_DIR_EGRESS ? p.m.saddr : p.m.daddr, slot);
		lk.slot = slot;
		lk.id = local;
		lv = bpf_map_lookup_elem(&pol_local, &lk);
		flags = lv ? lv->flags : 0;
		if (flags & gtpf) {
			struct pol_gtp_args ga = {
				.off = p.m.payload_off,
				.udp_payload = p.m.udp_len - 8,
				.local = local,
				.slot = slot,
				.dir = dir,
				.iso = !!(flags & gtpiso),
			};
			int v;

			peer = pol_ident_of(&p.m, dir == POL_DIR_EGRESS ? p.m.daddr : p.m.saddr, slot);
			/* A UDP length that disagrees with IP's: where the tunnel ends is unknown. */
			v = p.m.udp_len != p.m.l4_end - p.m.l4_off ? -POL_R_GTPU_MALFORMED : pol_gtp_tc(skb, &ga);
			if (v < 0) {
				rule = ga.rule;
				reason = (__u8)-v;
				goto drop;
			}
			gtp_rule = v ? ga.rule : 0;
			gtp_mod = ga.mod;
			qfi = ga.qfi;
			has_qfi = ga.has_qfi;
		}
	}

	/* A reply: the reversed tuple was allowed on this interface in the
	 * other direction. Fragments carry no ports and are never replies. */
	if (!p.m.frag_later) {
		pol_ct_fill(&ck, &p, ifindex, dir ^ 1, 1);
		cv = bpf_map_lookup_elem(&pol_ct, &ck);
		if (cv) {
			if (gtp_rule) {
				/* A tunnel packet: its inner flow's rule counts and modifies. */
				pol_count(gtp_rule, POL_R_GTPU_RULE, POL_V_ALLOW, dir, len);
				if (gtp_mod)
					return pol_modify(skb, &p.m, slot, gtp_rule, gtp_mod, qfi, has_qfi);
				return TC_ACT_UNSPEC;
			}
			pol_count(cv->rule, POL_R_REPLY, POL_V_ALLOW, dir, len);
			return TC_ACT_UNSPEC;
		}
	}

	if (dir == POL_DIR_EGRESS) {
		local = pol_ident_of(&p.m, p.m.saddr, slot);
		peer = pol_ident_of(&p.m, p.m.daddr, slot);
	} else {
		local = pol_ident_of(&p.m, p.m.daddr, slot);
		peer = pol_ident_of(&p.m, p.m.saddr, slot);
	}
	lk.slot = slot;
	lk.id = local;
	lv = bpf_map_lookup_elem(&pol_local, &lk);
	flags = lv ? lv->flags : 0;
	const __u32 iso = dir == POL_DIR_INGRESS ? POL_LOCAL_ISO_INGRESS : POL_LOCAL_ISO_EGRESS;
	const __u32 deny = dir == POL_DIR_INGRESS ? POL_LOCAL_DENY_INGRESS : POL_LOCAL_DENY_EGRESS;
	const __u32 gtpf = dir == POL_DIR_INGRESS ? POL_LOCAL_GTP_INGRESS : POL_LOCAL_GTP_EGRESS;

	if (p.m.frag_first || p.m.frag_later) {
		/* With GTP-U rules too: a fragment of a tunnel packet hides the inner flow. */
		if (flags & (iso | deny | gtpf)) {
			reason = POL_R_FRAGMENT;
			goto drop;
		}
		pol_count(0, POL_R_NOT_ISOLATED, POL_V_ALLOW, dir, len);
		return TC_ACT_UNSPEC;
	}
	/* An echo reply nobody asked for is judged like any packet (type 0/129). */
	if (flags & deny) {
		rule = (__u32)pol_rules(&pol_deny, slot, dir, local, peer, p.m.l4, p.lport);
		if (rule) {
			reason = POL_R_DENY_RULE;
			goto drop;
		}
	}
	if (!(flags & iso)) {
		reason = POL_R_NOT_ISOLATED;
	} else {
		const __u64 rm = pol_rules(&pol_allow, slot, dir, local, peer, p.m.l4, p.lport);

		rule = (__u32)rm;
		mod = rm >> 32;
		if (!rule) {
			reason = POL_R_DEFAULT_DENY;
			goto drop;
		}
		reason = POL_R_RULE;
	}
	if (gtp_rule) {
		/* Counted once, under the GTP-U rule that admitted the inner flow;
		 * its Modify actions, if it has any, take the outer rule's place. */
		rule = gtp_rule;
		reason = POL_R_GTPU_RULE;
		if (gtp_mod)
			mod = gtp_mod;
	}
	pol_count(rule, reason, POL_V_ALLOW, dir, len);
	if (!p.icmp_reply) {
		const __u64 now = bpf_ktime_get_ns();

		pol_ct_fill(&ck, &p, ifindex, dir, 0);
		cv = bpf_map_lookup_elem(&pol_ct, &ck);
		if (cv) {
			if (now - cv->seen_ns > POL_CT_REFRESH_NS)
				cv->seen_ns = now;
			cv->rule = rule;
		} else {
			struct pol_ct_val nv = {.seen_ns = now, .rule = rule};

			bpf_map_update_elem(&pol_ct, &ck, &nv, BPF_ANY);
			pol_event(&p, cfg, gen, dir, POL_V_ALLOW, reason, rule, local, peer, ifindex);
		}
	}
	if (mod)
		return pol_modify(skb, &p.m, slot, rule, mod, qfi, has_qfi);
	return TC_ACT_UNSPEC;

drop:
	pol_count(rule, reason, POL_V_DROP, dir, len);
	/* A flow allowed before the policy changed loses its replies too; not
	 * for a tunnel-layer drop: one denied UE flow says nothing about the
	 * tunnel, whose other flows keep their outer replies. */
	if (!p.m.frag_later && (reason < POL_R_GTPU_DENY || reason > POL_R_GTPU_FRAGMENT)) {
		pol_ct_fill(&ck, &p, ifindex, dir, 0);
		bpf_map_delete_elem(&pol_ct, &ck);
	}
	pol_event(&p, cfg, gen, dir, POL_V_DROP, reason, rule, local, peer, ifindex);
	return TC_ACT_SHOT;
}

/* From the workload: its egress policy. */
SEC("tc")
int pol_tc_ingress(struct __sk_buff *skb)
{
	return pol_judge(skb, POL_DIR_EGRESS);
}

/* To the workload: its ingress policy. */
SEC("tc")
int pol_tc_egress(struct __sk_buff *skb)
{
	return pol_judge(skb, POL_DIR_INGRESS);
}

/*
 * The node-edge deny-list (KagamiEdgePolicy) on XDP, before any skb exists:
 * a source on the list is dropped and counted (reason edge_deny); anything
 * else goes down the interface's XDP chain (obs_xdp and others), or
 * XDP_PASS. A frame whose IP header cannot be read is not this program's to
 * judge (it keys on the source address only): it goes on, and the TC policy
 * behind it drops it as malformed where a workload is policed.
 */
SEC("xdp")
int pol_xdp(struct xdp_md *ctx)
{
	struct cursor c = {};
	struct l3l4 m = {};
	struct pol_rule_val *v = NULL;
	struct pol_cfg *cfg;
	__u32 zero = 0;
	__u8 slot = 0;

	c.data = (void *)(long)ctx->data;
	c.data_end = (void *)(long)ctx->data_end;
	c.size = ctx->data_end - ctx->data;
	if (parse_l3_fixed(&c, &m) || !m.family)
		return kagami_xdp_chain_next(ctx);
	cfg = bpf_map_lookup_elem(&pol_cfg, &zero);
	if (!cfg || !pol_cfg_read(cfg, &slot))
		return kagami_xdp_chain_next(ctx);
	if (m.family == 4) {
		struct pol_ip4_key k = {.prefixlen = 64, .slot = slot};

		__builtin_memcpy(k.addr, m.saddr + 12, 4);
		v = bpf_map_lookup_elem(&pol_edge4, &k);
	} else {
		struct pol_ip6_key k = {.prefixlen = 160, .slot = slot};

		__builtin_memcpy(k.addr, m.saddr, 16);
		v = bpf_map_lookup_elem(&pol_edge6, &k);
	}
	if (!v)
		return kagami_xdp_chain_next(ctx);
	pol_count(v->rule, POL_R_EDGE_DENY, POL_V_DROP, POL_DIR_INGRESS, ctx->data_end - ctx->data);
	return XDP_DROP;
}
