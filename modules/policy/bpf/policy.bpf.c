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
#include "lib/events.h"
#include "lib/ratelimit.h"
#include "lib/xdp_chain.h"
#include "policy_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Bytes made linear before parsing: Ethernet, two VLAN tags, IPv6 with a
 * few extension headers and the first 8 bytes of L4 fit. */
#define POL_PULL_LEN 192
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

static __always_inline __u32 pol_ident_of(const struct l3l4 *m, const __u8 *addr, __u8 slot)
{
	struct pol_ident *id;

	if (m->family == 4) {
		struct pol_ip4_key k = {.prefixlen = 64, .slot = slot};

		__builtin_memcpy(k.addr, addr + 12, 4);
		id = bpf_map_lookup_elem(&pol_ip4, &k);
	} else {
		struct pol_ip6_key k = {.prefixlen = 160, .slot = slot};

		__builtin_memcpy(k.addr, addr, 16);
		id = bpf_map_lookup_elem(&pol_ip6, &k);
	}
	return id ? id->id : POL_ID_WORLD;
}

/* The four lookups of one rule table: (peer, ANY) x (protocol, ANY). A
 * constant number whatever the number of rules: the LPM trie does the rest
 * (its depth is bounded by the key's 128 bits). */
static __always_inline __u32 pol_rules(void *map, __u8 slot, __u8 dir, __u32 local, __u32 peer,
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
	if (v)
		return v->rule;
	k.proto = POL_PROTO_ANY;
	v = bpf_map_lookup_elem(map, &k);
	if (v)
		return v->rule;
	k.peer = bpf_htonl(POL_ID_ANY);
	v = bpf_map_lookup_elem(map, &k);
	if (v)
		return v->rule;
	k.proto = proto;
	v = bpf_map_lookup_elem(map, &k);
	return v ? v->rule : 0;
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
	__u32 zero = 0, local, peer, rule = 0, flags;
	__u8 slot = 0, reason;
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

	/* A reply: the reversed tuple was allowed on this interface in the
	 * other direction. Fragments carry no ports and are never replies. */
	if (!p.m.frag_later) {
		pol_ct_fill(&ck, &p, ifindex, dir ^ 1, 1);
		cv = bpf_map_lookup_elem(&pol_ct, &ck);
		if (cv) {
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

	if (p.m.frag_first || p.m.frag_later) {
		if (flags & (iso | deny)) {
			reason = POL_R_FRAGMENT;
			goto drop;
		}
		pol_count(0, POL_R_NOT_ISOLATED, POL_V_ALLOW, dir, len);
		return TC_ACT_UNSPEC;
	}
	/* An echo reply nobody asked for is judged like any packet (type 0/129). */
	if (flags & deny) {
		rule = pol_rules(&pol_deny, slot, dir, local, peer, p.m.l4, p.lport);
		if (rule) {
			reason = POL_R_DENY_RULE;
			goto drop;
		}
	}
	if (!(flags & iso)) {
		reason = POL_R_NOT_ISOLATED;
	} else {
		rule = pol_rules(&pol_allow, slot, dir, local, peer, p.m.l4, p.lport);
		if (!rule) {
			reason = POL_R_DEFAULT_DENY;
			goto drop;
		}
		reason = POL_R_RULE;
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
	return TC_ACT_UNSPEC;

drop:
	pol_count(rule, reason, POL_V_DROP, dir, len);
	if (!p.m.frag_later) {
		/* A flow allowed before the policy changed loses its replies too. */
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
