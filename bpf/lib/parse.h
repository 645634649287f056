/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h: bounds-checked packet parsing shared by TC and XDP programs.
 *
 * Contract:
 *   - Everything works on a struct cursor {data, data_end, off, size}: the
 *     caller fills data/data_end from its context (skb->data or xdp->data),
 *     so the same code runs on both hooks. `size` is the length of the frame
 *     that starts at `data`: data_end - data for a live packet, less when
 *     the frame is one of several in a replay batch (obs.bpf.c). Nothing
 *     here touches a context or a map.
 *   - No kernel type is used (no vmlinux.h, no CO-RE): wire formats are
 *     fixed by RFCs, and a program built on UAPI headers alone loads
 *     without the kernel's BTF, which saves ~50 ms per load.
 *   - Offsets are integers from the start of the frame; cur_ptr() turns one
 *     into a pointer only after clamping it to PARSE_MAX_OFF and checking
 *     that `len` bytes lie before data_end. A parser never reads a byte the
 *     verifier has not seen checked, and never trusts a length field to stay
 *     inside the packet.
 *   - Every parser returns 0 on success or an enum kg_parse_error
 *     (include/modules/obs/abi.h) naming the first problem; the caller counts
 *     it. "Not a protocol we parse" is success with the protocol recorded,
 *     not an error.
 *   - Every loop has a constant bound with a comment saying why it is enough;
 *     exceeding it is a malformed reason of its own, never a silent stop.
 *   - Multi-byte fields are returned in host order.
 */
#ifndef KAGAMI_BPF_LIB_PARSE_H
#define KAGAMI_BPF_LIB_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "modules/obs/abi.h"

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#endif
#define PARSE_ETH_P_QINQ_OLD 0x9100 /* pre-802.1ad QinQ outer tag, still deployed */

/* linux/in.h has the IPv4 protocols; the IPv6 extension header numbers
 * live in linux/in6.h, which drags in libc-dependent guards. */
#ifndef IPPROTO_ROUTING
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#endif
#define PARSE_IPPROTO_ICMP 1
#define PARSE_IPPROTO_ICMPV6 58
#define PARSE_IPPROTO_MH 135 /* Mobility header: shaped like the other ext headers */

/*
 * Largest offset ever turned into a packet pointer. The verifier needs a
 * constant upper bound on the variable part of a packet pointer (it rejects
 * anything that could exceed 64 KiB); 32 KiB covers 9000-byte jumbo frames
 * with room to spare. Headers starting beyond it are reported truncated.
 */
#define PARSE_MAX_OFF 0x7fff

/* QinQ is two tags (802.1ad S-tag + 802.1Q C-tag), but carrier networks
 * stack further (a provider's S-tag over a wholesale S-tag over QinQ, ...)
 * and tshark decodes any depth. Four tags covers every deployment seen; a
 * fifth is reported as KG_PERR_VLAN_TOO_MANY. Each iteration only advances
 * c->off (no stack), and cur_widen() below keeps one verifier state
 * whatever the count, so the bound costs instructions, not stack. */
#define PARSE_MAX_VLAN 4

/* RFC 8200 section 4.1 recommends each extension header at most once (the
 * destination options header twice): hop-by-hop, dest opts, routing,
 * fragment, AH, ESP (stops parsing), dest opts, mobility = 7. Eight covers
 * every compliant chain; longer chains are hostile (RFC 7112 territory). */
#ifndef PARSE_MAX_IPV6_EXT
#define PARSE_MAX_IPV6_EXT 8
#endif

struct cursor {
	void *data;
	void *data_end;
	__u32 off;
	__u32 size;  /* frame bytes from data; never more than data_end - data */
};

/* 802.1Q/802.1ad tag (linux/if_vlan.h is not UAPI). */
struct parse_vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

/* Pointer to `len` bytes at `off`, or NULL if they are not all in the packet. */
static __always_inline void *cur_ptr(const struct cursor *c, __u32 off, __u32 len)
{
	void *p;

	if (off > PARSE_MAX_OFF || off + len > c->size)
		return NULL;
	/* clang drops a plain `off & PARSE_MAX_OFF` after the check above, and
	 * may compute the pointer from a copy of `off` the check never saw; an
	 * opaque AND on the very register added to data gives the verifier its
	 * bound on every path. */
	asm volatile("%[off] &= %[max]" : [off] "+r"(off) : [max] "i"(PARSE_MAX_OFF));
	p = c->data + off;
	if (p + len > c->data_end)
		return NULL;
	return p;
}

/*
 * Makes a loop-carried offset "any value in [0, PARSE_MAX_OFF]" for the
 * verifier. Without it every iteration of a walk (IPv6 extension headers,
 * SCTP chunks, GTP-U extensions, PFCP IEs) carries a different offset range,
 * no two states compare equal and verification grows with the product of
 * the branches in the loop body; with it the states of iteration 2+ are
 * pruned against iteration 1. Returns false (and the caller must stop) for
 * an offset beyond PARSE_MAX_OFF, so the AND never changes a valid value.
 */
static __always_inline int cur_widen(__u32 *off)
{
	__u32 v = *off;

	if (v > PARSE_MAX_OFF)
		return 0;
	asm volatile("%[v] &= %[max]" : [v] "+r"(v) : [max] "i"(PARSE_MAX_OFF));
	*off = v;
	return 1;
}

/* Big-endian loads from bytes already checked with cur_ptr(). */
static __always_inline __u32 be32_at(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

static __always_inline __u16 be16_at(const __u8 *p)
{
	return ((__u16)p[0] << 8) | p[1];
}

/* Bytes between `off` and the end of the packet data we can read. */
static __always_inline __u32 cur_avail(const struct cursor *c, __u32 off)
{
	return off < c->size ? c->size - off : 0;
}

/* What the L2-L4 parsers found. Addresses are kept as IPv6 (IPv4 mapped to
 * ::ffff:a.b.c.d) so map keys have one shape. */
struct l3l4 {
	__u16 eth_proto;   /* after VLAN tags */
	__u8 vlan_tags;
	__u8 family;       /* 4, 6, or 0 for non-IP */
	__u8 l4;           /* IP protocol of the transport header (after ext headers) */
	__u8 frag_first;   /* first fragment (offset 0, more fragments) */
	__u8 frag_later;   /* a fragment that is not the first: no L4 header */
	__u8 frag_last;    /* last fragment (offset > 0, no more fragments) */
	__u16 ipv4_id;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u32 saddr4;      /* network order, IPv4 only */
	__u32 daddr4;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 l3_off;
	__u32 l4_off;
	__u32 l4_end;      /* end of the IP payload per the IP length field */
	__u32 payload_off; /* after the UDP/TCP/SCTP common header */
	__u16 udp_len;     /* UDP length field (header included) */
	__u8 tcp_flags;
	__u8 quoted;       /* the L4 fields describe a datagram quoted in an ICMP error */
};

static __always_inline int parse_eth(struct cursor *c, struct l3l4 *m)
{
	struct ethhdr *eth = cur_ptr(c, c->off, sizeof(*eth));
	__u16 proto;
	int i;

	if (!eth)
		return KG_PERR_ETH_TRUNCATED;
	proto = bpf_ntohs(eth->h_proto);
	c->off += sizeof(*eth);
	/* +1: the extra iteration detects a tag beyond PARSE_MAX_VLAN. */
	for (i = 0; i < PARSE_MAX_VLAN + 1; i++) {
		struct parse_vlan_hdr *vh;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD &&
		    proto != PARSE_ETH_P_QINQ_OLD)
			break;
		if (i == PARSE_MAX_VLAN)
			return KG_PERR_VLAN_TOO_MANY;
		vh = cur_ptr(c, c->off, sizeof(*vh));
		if (!vh)
			return KG_PERR_VLAN_TRUNCATED;
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		c->off += sizeof(*vh);
		m->vlan_tags++;
	}
	m->eth_proto = proto;
	/* One verifier state downstream whatever the number of tags. */
	if (!cur_widen(&c->off))
		return KG_PERR_VLAN_TRUNCATED;
	return 0;
}

static __always_inline void addr_map4(__u8 *dst, __u32 a)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &a, 4);
}

static __always_inline int parse_ipv4(struct cursor *c, struct l3l4 *m)
{
	struct iphdr *ip = cur_ptr(c, c->off, sizeof(*ip));
	__u32 hlen, tot;
	__u16 frag;

	if (!ip)
		return KG_PERR_IPV4_TRUNCATED;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return KG_PERR_IPV4_BAD_IHL;
	if (!cur_ptr(c, c->off, hlen))
		return KG_PERR_IPV4_TRUNCATED;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen)
		return KG_PERR_IPV4_BAD_TOTAL_LENGTH;
	m->family = 4;
	m->l4 = ip->protocol;
	m->saddr4 = ip->saddr;
	m->daddr4 = ip->daddr;
	addr_map4(m->saddr, ip->saddr);
	addr_map4(m->daddr, ip->daddr);
	m->ipv4_id = bpf_ntohs(ip->id);
	frag = bpf_ntohs(ip->frag_off);
	if (frag & 0x1fff) {
		m->frag_later = 1;
		m->frag_last = !(frag & 0x2000);
	} else if (frag & 0x2000) {
		m->frag_first = 1;
	}
	m->l3_off = c->off;
	m->l4_end = c->off + tot;
	c->off += hlen;
	if (!cur_widen(&c->off))
		return KG_PERR_IPV4_TRUNCATED;
	m->l4_off = c->off;
	return 0;
}

/* True for the IPv6 next-header values parse_ipv6_ext() walks. */
static __always_inline int parse_ipv6_is_ext(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_FRAGMENT ||
	       next == IPPROTO_DSTOPTS || next == IPPROTO_AH || next == PARSE_IPPROTO_MH;
}

/* The fixed IPv6 header. m->l4 is its next header, which may be an
 * extension header: then parse_ipv6_ext() must follow. */
static __always_inline int parse_ipv6_fixed(struct cursor *c, struct l3l4 *m)
{
	struct ipv6hdr *ip6 = cur_ptr(c, c->off, sizeof(*ip6));

	if (!ip6)
		return KG_PERR_IPV6_TRUNCATED;
	m->family = 6;
	__builtin_memcpy(m->saddr, &ip6->saddr, 16);
	__builtin_memcpy(m->daddr, &ip6->daddr, 16);
	m->l3_off = c->off;
	m->l4_end = c->off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	m->l4 = ip6->nexthdr;
	c->off += sizeof(*ip6);
	m->l4_off = c->off;
	return 0;
}

/*
 * The extension header chain from c->off, whose first header is m->l4.
 * Leaves m->l4/m->l4_off at the transport header. A separate step so that a
 * program can verify it once as a global function (obs.bpf.c): inlined, each
 * of its exits multiplies the verifier states of everything that follows.
 */
static __always_inline int parse_ipv6_ext(struct cursor *c, struct l3l4 *m)
{
	__u8 next = m->l4;
	int i;

	/* +1: the extra iteration detects a chain longer than the bound. */
	for (i = 0; i < PARSE_MAX_IPV6_EXT + 1; i++) {
		__u8 *h;

		if (!parse_ipv6_is_ext(next))
			break;
		if (i == PARSE_MAX_IPV6_EXT)
			return KG_PERR_IPV6_EXT_TOO_MANY;
		if (!cur_widen(&c->off))
			return KG_PERR_IPV6_EXT_TRUNCATED;
		h = cur_ptr(c, c->off, 8);
		if (!h)
			return KG_PERR_IPV6_EXT_TRUNCATED;
		if (next == IPPROTO_FRAGMENT) {
			__u16 fo = ((__u16)h[2] << 8) | h[3];

			if (fo & 0xfff8) {
				m->frag_later = 1;
				m->frag_last = !(fo & 1);
			} else if (fo & 1) {
				m->frag_first = 1;
			}
			next = h[0];
			c->off += 8;
		} else if (next == IPPROTO_AH) {
			/* RFC 4302: length in 4-octet units, minus 2. */
			next = h[0];
			c->off += ((__u32)h[1] + 2) * 4;
		} else {
			/* RFC 8200: length in 8-octet units, not counting the first 8. */
			next = h[0];
			c->off += ((__u32)h[1] + 1) * 8;
		}
		/* The whole header, not just its first 8 octets, must be there. */
		if (!cur_avail(c, c->off - 1))
			return KG_PERR_IPV6_EXT_TRUNCATED;
	}
	m->l4 = next;
	if (!cur_widen(&c->off))
		return KG_PERR_IPV6_EXT_TRUNCATED;
	m->l4_off = c->off;
	return 0;
}

/* Ethernet, VLAN/QinQ, IPv4, and the fixed IPv6 header: parse_l3() without
 * the IPv6 extension chain. If m->family == 6 and
 * parse_ipv6_is_ext(m->l4), the caller runs parse_ipv6_ext() next. */
static __always_inline int parse_l3_fixed(struct cursor *c, struct l3l4 *m)
{
	int err = parse_eth(c, m);

	if (err)
		return err;
	if (m->eth_proto == ETH_P_IP)
		return parse_ipv4(c, m);
	if (m->eth_proto == ETH_P_IPV6)
		return parse_ipv6_fixed(c, m);
	return 0;
}

/* Ethernet, VLAN/QinQ, IPv4/IPv6. Stops after the IP header(s); m->l4 and
 * m->l4_off say what follows. Non-IP frames succeed with family 0. */
static __always_inline int parse_l3(struct cursor *c, struct l3l4 *m)
{
	int err = parse_l3_fixed(c, m);

	if (err || m->family != 6 || !parse_ipv6_is_ext(m->l4))
		return err;
	return parse_ipv6_ext(c, m);
}

static __always_inline int parse_udp(struct cursor *c, struct l3l4 *m)
{
	struct udphdr *uh = cur_ptr(c, c->off, sizeof(*uh));

	if (!uh)
		return KG_PERR_UDP_TRUNCATED;
	m->sport = bpf_ntohs(uh->source);
	m->dport = bpf_ntohs(uh->dest);
	m->udp_len = bpf_ntohs(uh->len);
	if (m->udp_len < sizeof(*uh))
		return KG_PERR_UDP_BAD_LENGTH;
	c->off += sizeof(*uh);
	m->payload_off = c->off;
	return 0;
}

static __always_inline int parse_tcp(struct cursor *c, struct l3l4 *m)
{
	struct tcphdr *th = cur_ptr(c, c->off, sizeof(*th));
	__u32 doff;

	if (!th)
		return KG_PERR_TCP_TRUNCATED;
	doff = th->doff * 4;
	if (doff < sizeof(*th))
		return KG_PERR_TCP_BAD_DOFF;
	m->sport = bpf_ntohs(th->source);
	m->dport = bpf_ntohs(th->dest);
	m->tcp_flags = ((__u8 *)th)[13];
	c->off += doff;
	m->payload_off = c->off;
	return 0;
}

/*
 * ICMP/ICMPv6 errors quote the IP header and the start of the datagram that
 * caused them (RFC 792, RFC 4443 section 2.4). Wireshark decodes the quote
 * down to the application (e.g. PFCP), so a caller that counts like
 * Wireshark needs its UDP header. On success with a quoted UDP datagram,
 * m->quoted is set and sport/dport/udp_len/l4_off/payload_off describe the
 * quoted datagram (addresses stay the outer ones). Anything else (not an
 * error, quote not UDP, quote cut short, a non-first fragment) leaves
 * m->quoted 0: a quote is cut wherever the error ended, so a short one is
 * not malformed.
 */
static __always_inline int parse_icmp_quote(struct cursor *c, struct l3l4 *m)
{
	__u8 *h = cur_ptr(c, c->off, 8);
	__u32 off;
	__u8 t;

	if (!h)
		return 0;
	t = h[0];
	if (m->family == 4) {
		/* dest unreachable, source quench, redirect, time exceeded, param problem */
		if (t != 3 && t != 4 && t != 5 && t != 11 && t != 12)
			return 0;
	} else if (t < 1 || t > 4) {
		/* dest unreachable, packet too big, time exceeded, param problem */
		return 0;
	}
	off = c->off + 8;
	if (m->family == 4) {
		struct iphdr *ip = cur_ptr(c, off, sizeof(*ip));

		if (!ip || ip->ihl < 5 || ip->protocol != IPPROTO_UDP ||
		    (bpf_ntohs(ip->frag_off) & 0x1fff))
			return 0;
		off += ip->ihl * 4;
	} else {
		struct ipv6hdr *ip6 = cur_ptr(c, off, sizeof(*ip6));

		/* Extension headers in quotes are not walked: rare, and the quote
		 * is only for counting. */
		if (!ip6 || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		off += sizeof(*ip6);
	}
	h = cur_ptr(c, off, 8);
	if (!h)
		return 0;
	m->sport = be16_at(h);
	m->dport = be16_at(h + 2);
	m->udp_len = be16_at(h + 4);
	if (m->udp_len < 8)
		return 0;
	m->l4_off = off;
	m->payload_off = off + 8;
	m->quoted = 1;
	return 0;
}

#endif /* KAGAMI_BPF_LIB_PARSE_H */
