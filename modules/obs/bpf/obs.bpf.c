// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * obs: transport and 5G user-plane observability for packets.
 *
 * A passive observer on TC ingress/egress and XDP: it parses every frame
 * (Ethernet, VLAN/QinQ, IPv4/IPv6 + extension headers, UDP/TCP/SCTP, GTP-U
 * on UDP 2152, PFCP on UDP 8805) and counts into the maps of obs_maps.h.
 * It never drops, redirects or modifies a packet: every program returns
 * TC_ACT_OK / XDP_PASS whatever it finds, and malformed input is counted by
 * reason (enum kg_parse_error), never trusted.
 *
 * Counting follows Wireshark where it has an opinion (modules/obs/README.md):
 * the outermost GTP header on UDP 2152 (either port); UDP payload bytes from
 * the UDP length field; a fragmented GTP-U datagram counted once, when its
 * last fragment arrives, with that frame's length and the GTP facts its
 * first fragment stored; PFCP counted per message, several per datagram
 * when the FO flag says so, including PFCP quoted in ICMP errors (by type
 * and cause only).
 *
 * Replay (src/replay, BPF_PROG_TEST_RUN): obs_replay takes a batch of frames
 * per run (struct kg_replay_batch in the ABI header) and runs each through
 * the per-frame code obs_xdp runs, with the frame's wire length and capture
 * timestamp from its record. With replay_mode set before load, the TC
 * programs also take the original frame length from skb->cb[0] and the
 * capture timestamp from skb->tstamp (one frame per run; the kernel tests).
 *
 * No vmlinux.h: every type here is UAPI or a wire format, so the object has
 * no CO-RE relocations and libbpf never loads the kernel's BTF for it.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "modules/obs/abi.h"
#include "lib/counters.h"
#include "lib/gtpu.h"
#include "lib/parse.h"
#include "lib/pfcp.h"
#include "lib/sctp.h"
#include "lib/xdp_chain.h"
#include "obs_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK 0

/* Set through the skeleton's rodata before load; see the file comment. */
const volatile __u8 replay_mode = 0;

/* Bytes a TC program makes linear before parsing: enough for Ethernet, two
 * VLAN tags, IPv6 with extension headers, UDP, GTP-U with its extension
 * chain and an inner IPv6 header, or a PFCP header with its first IEs. */
#define OBS_PULL_LEN 256

struct obs_pkt {
	struct cursor cur;
	struct obs_counters *ctr;
	void *ctx;        /* the hook's context, for the global helpers below */
	__u64 ts;
	__u32 frame_len;
	__u32 ifslot;     /* interface slot (OBS_IF_SLOTS) */
	__u32 base;       /* frame offset in the packet buffer (replay batches) */
	__u32 size;       /* frame bytes from base */
	__u8 dir;
	__u8 xdp;         /* constant per call site: which global helpers to call */
	__u8 replay;      /* constant per call site: obs_replay's handlers */
};

/* A frame's facts, shared by the L2-L4 pass and the handlers (see "What the
 * L2-L4 pass hands to the protocol handlers" below). */
struct obs_args {
	struct l3l4 m;
	__u64 ts;
	__u32 frame_len;
	__u32 ifindex;
	__u32 base;      /* frame offset in the packet buffer: 0 live */
	__u32 size;      /* frame bytes from base */
	__u8 dir;
	__u8 has_ts;     /* ts is the capture's: do not read the clock */
	__u8 ifslot;     /* interface slot, set by the L2-L4 pass */
	__u8 pad[5];
};

static __always_inline void count_malformed(struct obs_pkt *p, int reason)
{
	struct obs_malformed_counts *mal;
	__u32 key = p->dir;
	__u64 r = (__u32)reason;

	/* reason may come back from a global helper, unknown to the verifier:
	 * check the very register used as the index. */
	asm volatile("" : "+r"(r));
	if (r <= KG_PERR_NONE || r >= KG_PERR_MAX)
		return;
	/* Looked up only when needed: well-formed packets skip this map. */
	mal = bpf_map_lookup_elem(&obs_malformed, &key);
	if (mal)
		mal->c[r]++;
	p->ctr->c[OBS_CTR_MALFORMED]++;
}

/* The slot of an interface (OBS_IF_SLOTS): two inlined array lookups. */
static __always_inline __u32 ifslot_of(__u32 ifindex)
{
	__u32 k = ifindex % OBS_IFSLOT_TABLE;
	struct obs_ifslot *e = bpf_map_lookup_elem(&obs_ifslot, &k);

	if (!e || !ifindex)
		return 0;
	if (e->ifindex != ifindex) {
		k = (k + 1) % OBS_IFSLOT_TABLE;
		e = bpf_map_lookup_elem(&obs_ifslot, &k);
		if (!e || e->ifindex != ifindex)
			return 0;
	}
	return e->slot < OBS_IF_SLOTS ? e->slot : 0;
}

static __always_inline __u32 l4_class(__u8 family, __u8 l4)
{
	if (!family)
		return OBS_L4_NON_IP;
	switch (l4) {
	case IPPROTO_TCP:
		return OBS_L4_TCP;
	case IPPROTO_UDP:
		return OBS_L4_UDP;
	case IPPROTO_SCTP:
		return OBS_L4_SCTP;
	case PARSE_IPPROTO_ICMP:
		return OBS_L4_ICMP;
	case PARSE_IPPROTO_ICMPV6:
		return OBS_L4_ICMPV6;
	case IPPROTO_ESP:
		return OBS_L4_ESP;
	case IPPROTO_GRE:
		return OBS_L4_GRE;
	}
	return OBS_L4_OTHER_IP;
}

static __always_inline void count_iface(struct obs_pkt *p, __u32 cls)
{
	__u32 k = ((p->ifslot & (OBS_IF_SLOTS - 1)) * OBS_DIR_MAX + (p->dir & 1)) * OBS_L4_CLASSES +
		  (cls & (OBS_L4_CLASSES - 1));
	struct obs_pkt_bytes *v = bpf_map_lookup_elem(&obs_iface, &k);

	if (v) {
		v->packets++;
		v->bytes += p->frame_len;
	}
}

static __always_inline void teid_add(struct obs_counters *ctr, __u32 teid, __u8 msg, __u8 dir,
				     __u8 ifslot,
				     __u64 packets, __u64 frame_bytes, __u64 udp_bytes,
				     __u64 gtp_bytes)
{
	struct obs_teid_key k = { .teid = teid, .msg_type = msg, .dir = dir, .ifslot = ifslot };
	struct obs_teid_value *v = bpf_map_lookup_elem(&obs_teid, &k);

	if (v) {
		v->packets += packets;
		v->frame_bytes += frame_bytes;
		v->udp_payload_bytes += udp_bytes;
		v->gtp_length_bytes += gtp_bytes;
		return;
	}
	struct obs_teid_value init = {
		.packets = packets,
		.frame_bytes = frame_bytes,
		.udp_payload_bytes = udp_bytes,
		.gtp_length_bytes = gtp_bytes,
	};

	if (!bpf_map_update_elem(&obs_teid, &k, &init, BPF_NOEXIST))
		ctr->c[OBS_CTR_GTPU_TEID_NEW]++;
}

/* Counts one GTP-U datagram whose mandatory header parsed: in the frame that
 * carries it, or for a fragmented datagram in the frame that completes it. */
static __always_inline void gtpu_count_one(struct obs_counters *ctr, const struct gtpu_info *g,
					   __u32 udp_payload, __u32 frame_len, __u8 dir, __u32 ifslot)
{
	int i;

	ctr->c[OBS_CTR_GTPU_PACKETS]++;
	ctr->c[OBS_CTR_GTPU_FRAME_BYTES] += frame_len;
	ctr->c[OBS_CTR_GTPU_UDP_PAYLOAD_BYTES] += udp_payload;
	ctr->c[OBS_CTR_GTPU_LEN_FIELD_BYTES] += g->length;
	if ((__u32)g->length + 8 != udp_payload)
		ctr->c[OBS_CTR_GTPU_LEN_MISMATCH]++;
	if (g->flags & GTPU_FLAG_E)
		ctr->c[OBS_CTR_GTPU_WITH_EXT]++;
	else
		ctr->c[OBS_CTR_GTPU_WITHOUT_EXT]++;
	if (g->flags & GTPU_FLAG_S)
		ctr->c[OBS_CTR_GTPU_WITH_SEQ]++;

	switch (g->msg_type) {
	case GTPU_MSG_ECHO_REQUEST:
		ctr->c[OBS_CTR_GTPU_ECHO_REQUEST]++;
		break;
	case GTPU_MSG_ECHO_RESPONSE:
		ctr->c[OBS_CTR_GTPU_ECHO_RESPONSE]++;
		break;
	case GTPU_MSG_ERROR_INDICATION:
		ctr->c[OBS_CTR_GTPU_ERROR_INDICATION]++;
		break;
	case GTPU_MSG_END_MARKER:
		ctr->c[OBS_CTR_GTPU_END_MARKER]++;
		break;
	}
	percpu_array_add(&obs_gtpu_msg, (ifslot & (OBS_IF_SLOTS - 1)) * 256 + g->msg_type, 1);

	/* Bounded by gtpu_parse: n_ext <= GTPU_MAX_EXT. */
	for (i = 0; i < GTPU_MAX_EXT; i++) {
		if (i >= g->n_ext)
			break;
		percpu_array_add(&obs_gtpu_ext, g->ext_types[i], 1);
	}
	if (g->has_psc) {
		struct obs_pkt_bytes *q;
		__u32 slot = (ifslot & (OBS_IF_SLOTS - 1)) * OBS_QFI_SLOTS +
			     ((__u32)dir * 2 + (g->pdu_type & 1)) * 64 + (g->qfi & 63);

		percpu_array_add(&obs_gtpu_pdu, g->pdu_type & 15, 1);
		q = bpf_map_lookup_elem(&obs_qfi, &slot);
		if (q) {
			q->packets++;
			q->bytes += frame_len;
		}
	}
	teid_add(ctr, g->teid, g->msg_type, dir, ifslot, 1, frame_len, udp_payload, g->length);
}

/* gtpu_count_one() as a global helper (see "Global helpers"): it reads no
 * packet, and verified on its own it no longer multiplies with every exit of
 * the extension header walk (it halves what the GTP-U handler costs the
 * verifier). The call
 * costs ~3 ns per GTP-U packet, so only obs_replay, whose load time is most
 * of a replay, uses it; the live programs count inline. */
__noinline int obs_gtpu_count(struct obs_counters *ctr, const struct gtpu_info *g,
			      __u32 udp_payload, __u32 frame_len, __u32 dir_slot)
{
	if (!ctr || !g)
		return 0;
	gtpu_count_one(ctr, g, udp_payload, frame_len, dir_slot & 1, (dir_slot >> 8) & 0xff);
	return 0;
}

static __always_inline void gtpu_count(struct obs_pkt *p, const struct gtpu_info *g,
				       __u32 udp_payload)
{
	if (p->replay)
		obs_gtpu_count(p->ctr, g, udp_payload, p->frame_len, p->dir | p->ifslot << 8);
	else
		gtpu_count_one(p->ctr, g, udp_payload, p->frame_len, p->dir, p->ifslot);
}

/* The last IPv4 fragment of a datagram whose first fragment was GTP-U. */
static __always_inline void gtpu_frag_complete(struct obs_pkt *p, const struct l3l4 *m)
{
	struct obs_frag_key k = {
		.saddr = m->saddr4, .daddr = m->daddr4, .id = m->ipv4_id, .proto = m->l4,
	};
	struct obs_frag_value *v = bpf_map_lookup_elem(&obs_frag, &k);
	struct gtpu_info g = {};

	if (!v)
		return;
	g.teid = v->teid;
	g.length = v->gtp_length;
	g.msg_type = v->msg_type;
	g.flags = v->flags;
	g.n_ext = v->n_ext;
	g.has_psc = v->has_psc;
	g.pdu_type = v->pdu_type;
	g.qfi = v->qfi;
	__builtin_memcpy(g.ext_types, v->ext_types, sizeof(g.ext_types));
	gtpu_count(p, &g, v->udp_payload);
	p->ctr->c[OBS_CTR_GTPU_FRAG_COMPLETED]++;
	bpf_map_delete_elem(&obs_frag, &k);
}

static __always_inline void handle_gtpu(struct obs_pkt *p, const struct l3l4 *m)
{
	struct gtpu_info g = {};
	__u32 udp_payload = m->udp_len - 8;
	int err;

	if (m->frag_later) {
		gtpu_frag_complete(p, m);
		return;
	}
	p->cur.off = m->payload_off;
	err = gtpu_parse(&p->cur, &g);
	if (err == KG_PERR_GTPU_TRUNCATED || err == KG_PERR_GTPU_BAD_VERSION) {
		count_malformed(p, err);
		return;
	}
	/* From here the mandatory header is valid: Wireshark decodes and counts
	 * the message even when the extension chain or the lengths are bad. */
	if (!err && (__u32)g.length + 8 != udp_payload)
		err = KG_PERR_GTPU_LENGTH_MISMATCH;

	if (m->frag_first && m->family == 4) {
		struct obs_frag_key k = {
			.saddr = m->saddr4, .daddr = m->daddr4, .id = m->ipv4_id, .proto = m->l4,
		};
		struct obs_frag_value v = {
			.teid = g.teid,
			.gtp_length = g.length,
			.udp_payload = (__u16)udp_payload,
			.msg_type = g.msg_type,
			.flags = g.flags,
			.n_ext = g.n_ext,
			.has_psc = g.has_psc,
			.pdu_type = g.pdu_type,
			.qfi = g.qfi,
		};

		__builtin_memcpy(v.ext_types, g.ext_types, sizeof(v.ext_types));
		bpf_map_update_elem(&obs_frag, &k, &v, BPF_ANY);
		p->ctr->c[OBS_CTR_GTPU_FRAG_FIRST]++;
		count_malformed(p, err);
		return;
	}
	gtpu_count(p, &g, udp_payload);

	if (!err && g.msg_type == GTPU_MSG_TPDU) {
		__u8 *inner = cur_ptr(&p->cur, g.payload_off, 1);

		if (!inner) {
			p->ctr->c[OBS_CTR_GTPU_INNER_OTHER]++;
		} else if ((inner[0] >> 4) == 4) {
			if (cur_ptr(&p->cur, g.payload_off, 20))
				p->ctr->c[OBS_CTR_GTPU_INNER_IPV4]++;
			else
				err = KG_PERR_GTPU_INNER_TRUNCATED;
		} else if ((inner[0] >> 4) == 6) {
			if (cur_ptr(&p->cur, g.payload_off, 40))
				p->ctr->c[OBS_CTR_GTPU_INNER_IPV6]++;
			else
				err = KG_PERR_GTPU_INNER_TRUNCATED;
		} else {
			p->ctr->c[OBS_CTR_GTPU_INNER_OTHER]++;
		}
	}
	count_malformed(p, err);
}

/* A cursor over one frame: the whole packet live, one record of a replay
 * batch in obs_replay. The mask keeps the verifier's bound on base. */
static __always_inline void obs_cursor(struct cursor *c, void *data, void *data_end, __u32 base,
				       __u32 size)
{
	base &= KG_REPLAY_MAX_OFF;
	c->data = data + base;
	c->data_end = data_end;
	c->off = 0;
	c->size = size;
}

/*
 * Global helpers: the verifier checks a global (non-static, noinline)
 * function once, on its own, instead of once per path that reaches it. The
 * IPv6 extension chain and the PFCP IE walk are loops whose many exits would
 * otherwise each carry a state through everything that follows (the IPv6
 * walk alone was 125k of the 330k instructions verified per program). A
 * global function cannot take packet pointers, so each takes its hook's
 * context; hence one wrapper per context type.
 */

/* Returns the Cause as 0x100 | cause, 0 if the message has none, or
 * -reason when the IEs are malformed. */
static __always_inline int obs_cause_walk(void *data, void *data_end, __u32 base, __u32 size,
					  __u32 ies_off, __u32 msg_end)
{
	struct pfcp_hdr h = { .ies_off = ies_off, .msg_end = msg_end };
	struct cursor c;
	__u8 cause = 0;
	int found = 0, err;

	obs_cursor(&c, data, data_end, base, size);
	err = pfcp_find_cause(&c, &h, &cause, &found);
	if (err)
		return -err;
	return found ? 0x100 | cause : 0;
}

__noinline int obs_cause_tc(struct __sk_buff *skb, __u32 base, __u32 size, __u32 ies_off,
				 __u32 msg_end)
{
	return obs_cause_walk((void *)(long)skb->data, (void *)(long)skb->data_end, base, size,
			      ies_off, msg_end);
}

__noinline int obs_cause_xdp(struct xdp_md *ctx, __u32 base, __u32 size, __u32 ies_off,
				  __u32 msg_end)
{
	return obs_cause_walk((void *)(long)ctx->data, (void *)(long)ctx->data_end, base, size,
			      ies_off, msg_end);
}

/* Adds to a counter of the packet's interface slot (enum obs_slot_counter). */
static __always_inline void slot_count(__u32 ifslot, __u32 c)
{
	__u32 k = ifslot & (OBS_IF_SLOTS - 1);
	struct obs_slot_counters *v = bpf_map_lookup_elem(&obs_slot_ctr, &k);

	if (v && c < OBS_SCTR_MAX)
		v->c[c]++;
}

static __always_inline void pfcp_latency(struct obs_pkt *p, __u8 msg_type, __u64 ns)
{
	struct obs_pfcp_lat_key key = { .msg_type = msg_type, .ifslot = p->ifslot & (OBS_IF_SLOTS - 1) };
	struct obs_latency_hist *h = bpf_map_lookup_elem(&obs_pfcp_lat, &key);
	__u32 b = log2_u64(ns / 1000);

	if (!h) {
		/* First response of this type on this interface. */
		static const struct obs_latency_hist zero;

		bpf_map_update_elem(&obs_pfcp_lat, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&obs_pfcp_lat, &key);
		if (!h)
			return;
	}
	if (b >= OBS_LAT_BUCKETS)
		b = OBS_LAT_BUCKETS - 1;
	h->count++;
	h->sum_ns += ns;
	h->buckets[b]++;
}

/* Counts the Cause of a response; returns a malformed reason or 0. */
static __always_inline int pfcp_count_cause(struct obs_pkt *p, const struct pfcp_hdr *h, __u8 t,
					    int quoted)
{
	__u8 cause;
	int found, err, r;

	r = p->xdp ? obs_cause_xdp(p->ctx, p->base, p->size, h->ies_off, h->msg_end)
		   : obs_cause_tc(p->ctx, p->base, p->size, h->ies_off, h->msg_end);
	err = r < 0 ? -r : 0;
	found = r & 0x100;
	cause = r & 0xff;
	if (found) {
		struct obs_pfcp_cause_key ck = {
			.msg_type = t, .cause = cause, .ifslot = p->ifslot & (OBS_IF_SLOTS - 1),
		};
		__u64 one = 1, *c = bpf_map_lookup_elem(&obs_pfcp_cause, &ck);

		if (c)
			*c += 1;
		else
			bpf_map_update_elem(&obs_pfcp_cause, &ck, &one, BPF_NOEXIST);
		if (cause == PFCP_CAUSE_ACCEPTED && !quoted) {
			if (t == PFCP_MSG_SESSION_ESTABLISHMENT_RESPONSE) {
				p->ctr->c[OBS_CTR_PFCP_SESS_EST_ACCEPTED]++;
				slot_count(p->ifslot, OBS_SCTR_PFCP_SESS_EST_ACCEPTED);
			} else if (t == PFCP_MSG_SESSION_DELETION_RESPONSE) {
				p->ctr->c[OBS_CTR_PFCP_SESS_DEL_ACCEPTED]++;
				slot_count(p->ifslot, OBS_SCTR_PFCP_SESS_DEL_ACCEPTED);
			}
		}
	}
	/* A quote is cut wherever the ICMP error ended: not malformed. */
	return quoted ? 0 : err;
}

/* One PFCP message whose header parsed; returns a malformed reason or 0. */
static __always_inline int pfcp_count(struct obs_pkt *p, int quoted, const __u8 *saddr,
				      const __u8 *daddr, const struct pfcp_hdr *h)
{
	struct obs_pfcp_pending_key pk = { .seq = h->seq };
	__u8 t = h->msg_type;

	p->ctr->c[OBS_CTR_PFCP_MESSAGES]++;
	percpu_array_add(&obs_pfcp_msg, (p->ifslot & (OBS_IF_SLOTS - 1)) * 256 + t, 1);
	if (quoted) {
		/* Quoted in an ICMP error: Wireshark counts it by type and cause,
		 * but it was never delivered, so no timing and no session. */
		p->ctr->c[OBS_CTR_PFCP_IN_ICMP]++;
		if (pfcp_is_response(t))
			pfcp_count_cause(p, h, t, 1);
		return 0;
	}
	if (pfcp_is_request(t)) {
		struct obs_pfcp_pending_value pv = { .ts_ns = p->ts, .msg_type = t };

		p->ctr->c[OBS_CTR_PFCP_REQUESTS]++;
		/* Keyed by the requester; NOEXIST keeps the first transmission,
		 * so a retransmitted request's latency includes the wait. */
		__builtin_memcpy(pk.requester, saddr, 16);
		__builtin_memcpy(pk.responder, daddr, 16);
		if (!bpf_map_update_elem(&obs_pfcp_pend, &pk, &pv, BPF_NOEXIST))
			p->ctr->c[OBS_CTR_PFCP_PENDING_NEW]++;
		return 0;
	}
	if (!pfcp_is_response(t))
		return 0;

	struct obs_pfcp_pending_value *req;

	p->ctr->c[OBS_CTR_PFCP_RESPONSES]++;
	__builtin_memcpy(pk.requester, daddr, 16);
	__builtin_memcpy(pk.responder, saddr, 16);
	req = bpf_map_lookup_elem(&obs_pfcp_pend, &pk);
	if (req) {
		pfcp_latency(p, t, p->ts >= req->ts_ns ? p->ts - req->ts_ns : 0);
		bpf_map_delete_elem(&obs_pfcp_pend, &pk);
	} else {
		p->ctr->c[OBS_CTR_PFCP_RESPONSES_UNMATCHED]++;
		slot_count(p->ifslot, OBS_SCTR_PFCP_RESPONSES_UNMATCHED);
	}

	return pfcp_count_cause(p, h, t, 0);
}

/* pfcp_count() as a global helper (see "Global helpers"): the message loop
 * then costs the verifier one short body per message, not the request,
 * response and cause paths once per message. PFCP is signalling, a few
 * thousand messages a second, so the call costs nothing that matters. The
 * frame's facts come from the handler's obs_args (a->ts is the time the
 * handler settled on). */
static __always_inline int obs_pfcp_one(void *ctx, int xdp, const struct obs_args *a,
					const struct pfcp_hdr *h, struct obs_counters *ctr)
{
	struct obs_pkt p = {};

	p.ctr = ctr;
	p.ctx = ctx;
	p.xdp = xdp;
	p.ts = a->ts;
	p.base = a->base;
	p.size = a->size;
	p.dir = a->dir & 1;
	p.ifslot = a->ifslot;
	return pfcp_count(&p, a->m.quoted, a->m.saddr, a->m.daddr, h);
}

__noinline int obs_pfcpmsg_tc(struct __sk_buff *skb, const struct obs_args *a,
			      const struct pfcp_hdr *h, struct obs_counters *ctr)
{
	if (!a || !h || !ctr)
		return 0;
	return obs_pfcp_one(skb, 0, a, h, ctr);
}

__noinline int obs_pfcpmsg_xdp(struct xdp_md *ctx, const struct obs_args *a,
			       const struct pfcp_hdr *h, struct obs_counters *ctr)
{
	if (!a || !h || !ctr)
		return 0;
	return obs_pfcp_one(ctx, 1, a, h, ctr);
}

static __always_inline void handle_pfcp(struct obs_pkt *p, const struct obs_args *a)
{
	const struct l3l4 *m = &a->m;
	__u32 off = m->payload_off;
	__u32 end = m->l4_off + m->udp_len;
	int i, err = 0;

	/* +1: the extra iteration detects a chain longer than the bound. */
	for (i = 0; i < PFCP_MAX_MSGS + 1; i++) {
		struct pfcp_hdr h = {};
		int perr;

		if (i == PFCP_MAX_MSGS) {
			err = KG_PERR_PFCP_TOO_MANY_MESSAGES;
			break;
		}
		if (!cur_widen(&off)) {
			err = KG_PERR_PFCP_TRUNCATED;
			break;
		}
		perr = pfcp_parse_header(&p->cur, off, end, &h);
		if (perr == KG_PERR_PFCP_TRUNCATED || perr == KG_PERR_PFCP_BAD_VERSION) {
			err = perr;
			break;
		}
		err = p->xdp ? obs_pfcpmsg_xdp(p->ctx, a, &h, p->ctr) : obs_pfcpmsg_tc(p->ctx, a, &h, p->ctr);
		if (perr) {
			/* Length past the datagram: counted, but nothing after it
			 * can be trusted. */
			err = perr;
			break;
		}
		if (err || !(h.flags & PFCP_FLAG_FO) || h.msg_end >= end)
			break;
		off = h.msg_end;
	}
	/* A quote is cut wherever the ICMP error ended: not malformed. */
	if (!m->quoted)
		count_malformed(p, err);
}

/* One SCTP chunk for the global helper below. */
struct obs_sctp_walk {
	__u32 base;
	__u32 size;
	__u32 off;   /* the chunk */
	__u32 end;   /* end of the SCTP packet */
	__u32 vtag;
	__u16 sport;
	__u16 dport;
	__u8 ifslot;
	__u8 pad[7];
};

/* Counts the chunk at w->off; returns where the next one starts, or
 * -reason. A global helper (see "Global helpers"), so the chunk loop costs
 * the verifier one short body per iteration. */
static __always_inline int obs_chunk_count(void *data, void *data_end, const struct obs_sctp_walk *w,
					   struct obs_counters *ctr, struct obs_slot_counters *sctr)
{
	struct sctp_chunk_info ci = {};
	struct cursor c;
	int err;

	obs_cursor(&c, data, data_end, w->base, w->size);
	err = sctp_chunk_at(&c, w->off, w->end, &ci);
	if (err)
		return -err;
	ctr->c[OBS_CTR_SCTP_CHUNKS]++;
	sctr->c[OBS_SCTR_SCTP_CHUNKS]++;
	percpu_array_add(&obs_sctp_chunk, (w->ifslot & (OBS_IF_SLOTS - 1)) * 256 + ci.type, 1);
	if (ci.type == SCTP_CHUNK_DATA || ci.type == SCTP_CHUNK_IDATA) {
		struct obs_sctp_tsn_key tk = {
			.vtag = w->vtag, .tsn = ci.tsn, .sport = w->sport, .dport = w->dport,
		};
		__u8 seen = 1;

		ctr->c[OBS_CTR_SCTP_DATA_CHUNKS]++;
		sctr->c[OBS_SCTR_SCTP_DATA_CHUNKS]++;
		percpu_array_add(&obs_sctp_ppid,
				 (w->ifslot & (OBS_IF_SLOTS - 1)) * OBS_SCTP_PPID_SLOTS +
					 (ci.ppid < OBS_SCTP_PPID_OTHER ? ci.ppid : OBS_SCTP_PPID_OTHER),
				 1);
		if (bpf_map_lookup_elem(&obs_sctp_tsn, &tk)) {
			ctr->c[OBS_CTR_SCTP_DATA_RETRANSMITTED]++;
			sctr->c[OBS_SCTR_SCTP_DATA_RETRANSMITTED]++;
		}
		else if (!bpf_map_update_elem(&obs_sctp_tsn, &tk, &seen, BPF_NOEXIST))
			ctr->c[OBS_CTR_SCTP_TSN_NEW]++;
	} else if (ci.type == SCTP_CHUNK_ABORT) {
		ctr->c[OBS_CTR_SCTP_ABORTS]++;
		sctr->c[OBS_SCTR_SCTP_ABORTS]++;
	}
	return ci.next_off;
}

__noinline int obs_chunk_tc(struct __sk_buff *skb, const struct obs_sctp_walk *w,
			    struct obs_counters *ctr, struct obs_slot_counters *sctr)
{
	if (!w || !ctr || !sctr)
		return -KG_PERR_SCTP_CHUNK_PAST_END;
	return obs_chunk_count((void *)(long)skb->data, (void *)(long)skb->data_end, w, ctr, sctr);
}

__noinline int obs_chunk_xdp(struct xdp_md *ctx, const struct obs_sctp_walk *w,
			     struct obs_counters *ctr, struct obs_slot_counters *sctr)
{
	if (!w || !ctr || !sctr)
		return -KG_PERR_SCTP_CHUNK_PAST_END;
	return obs_chunk_count((void *)(long)ctx->data, (void *)(long)ctx->data_end, w, ctr, sctr);
}

static __always_inline void handle_sctp(struct obs_pkt *p, const struct l3l4 *m)
{
	struct obs_sctp_walk w = {};
	struct obs_slot_counters *sctr;
	struct sctp_common s;
	__u32 off, k = p->ifslot & (OBS_IF_SLOTS - 1);
	int i, err;

	p->cur.off = m->l4_off;
	err = sctp_parse_common(&p->cur, &s);
	if (err) {
		count_malformed(p, err);
		return;
	}
	/* Once per packet, handed to every chunk; an index below OBS_IF_SLOTS
	 * always finds its entry. */
	sctr = bpf_map_lookup_elem(&obs_slot_ctr, &k);
	if (!sctr)
		return;
	p->ctr->c[OBS_CTR_SCTP_PACKETS]++;
	sctr->c[OBS_SCTR_SCTP_PACKETS]++;
	w.base = p->base;
	w.size = p->size;
	w.end = m->l4_end;
	w.vtag = s.vtag;
	w.sport = s.sport;
	w.dport = s.dport;
	w.ifslot = p->ifslot;
	off = p->cur.off;
	/* +1: the extra iteration detects more chunks than the bound. */
	for (i = 0; i < SCTP_MAX_CHUNKS + 1; i++) {
		int r;

		if (off >= w.end)
			break;
		if (i == SCTP_MAX_CHUNKS) {
			err = KG_PERR_SCTP_TOO_MANY_CHUNKS;
			break;
		}
		w.off = off;
		r = p->xdp ? obs_chunk_xdp(p->ctx, &w, p->ctr, sctr) : obs_chunk_tc(p->ctx, &w, p->ctr, sctr);
		if (r < 0) {
			err = -r;
			break;
		}
		off = r;
	}
	count_malformed(p, err);
}

/*
 * What the L2-L4 pass hands to the protocol handlers. The handlers are
 * global (non-inlined) functions, so the verifier checks each one once on
 * its own instead of once per path through the L2-L4 parser: with the
 * bounded loops of VLAN, IPv6, SCTP, GTP-U and PFCP all inlined into one
 * body the path count exceeds the verifier's 1M-instruction budget. A
 * global function cannot take packet pointers, so each handler takes its
 * hook's context and re-reads data/data_end from it; hence one thin wrapper
 * per (handler, context type).
 */

static __always_inline int obs_pkt_init(struct obs_pkt *p, void *ctx, int xdp, void *data,
					void *data_end, const struct obs_args *a)
{
	p->replay = 0;
	__u32 key = a->dir;

	obs_cursor(&p->cur, data, data_end, a->base, a->size);
	p->ctx = ctx;
	p->xdp = xdp;
	p->ts = a->ts;
	p->frame_len = a->frame_len;
	p->ifslot = a->ifslot;
	p->base = a->base;
	p->size = a->size;
	p->dir = a->dir;
	p->ctr = bpf_map_lookup_elem(&obs_counters, &key);
	return p->ctr != NULL;
}

static __always_inline int obs_v6ext(void *data, void *data_end, struct obs_args *a)
{
	struct cursor c;

	obs_cursor(&c, data, data_end, a->base, a->size);
	c.off = a->m.l4_off;
	return parse_ipv6_ext(&c, &a->m);
}

/* The IPv6 extension chain (see "Global helpers" above); a->m is updated. */
__noinline int obs_v6ext_tc(struct __sk_buff *skb, struct obs_args *a)
{
	if (!a)
		return KG_PERR_IPV6_EXT_TRUNCATED;
	return obs_v6ext((void *)(long)skb->data, (void *)(long)skb->data_end, a);
}

__noinline int obs_v6ext_xdp(struct xdp_md *ctx, struct obs_args *a)
{
	if (!a)
		return KG_PERR_IPV6_EXT_TRUNCATED;
	return obs_v6ext((void *)(long)ctx->data, (void *)(long)ctx->data_end, a);
}

enum obs_handler { OBS_H_GTPU, OBS_H_PFCP, OBS_H_SCTP };

static __always_inline int obs_handle(void *ctx, int xdp, int replay, void *data,
				      void *data_end, struct obs_args *a, enum obs_handler h)
{
	struct obs_pkt p;

	if (!a || !obs_pkt_init(&p, ctx, xdp, data, data_end, a))
		return 0;
	p.replay = replay;
	/* Only PFCP needs the time (request/response latency): the clock is
	 * read here rather than for every packet. Replay passes the capture's. */
	if (h == OBS_H_PFCP && !a->has_ts)
		p.ts = a->ts = bpf_ktime_get_ns();
	if (h == OBS_H_GTPU)
		handle_gtpu(&p, &a->m);
	else if (h == OBS_H_PFCP)
		handle_pfcp(&p, a);
	else
		handle_sctp(&p, &a->m);
	return 0;
}

__noinline int obs_gtpu_tc(struct __sk_buff *skb, struct obs_args *a)
{
	return obs_handle(skb, 0, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, a,
			  OBS_H_GTPU);
}

__noinline int obs_pfcp_tc(struct __sk_buff *skb, struct obs_args *a)
{
	return obs_handle(skb, 0, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, a,
			  OBS_H_PFCP);
}

__noinline int obs_sctp_tc(struct __sk_buff *skb, struct obs_args *a)
{
	return obs_handle(skb, 0, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, a,
			  OBS_H_SCTP);
}

__noinline int obs_gtpu_xdp(struct xdp_md *ctx, struct obs_args *a)
{
	return obs_handle(ctx, 1, 0, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a,
			  OBS_H_GTPU);
}

__noinline int obs_pfcp_xdp(struct xdp_md *ctx, struct obs_args *a)
{
	return obs_handle(ctx, 1, 0, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a,
			  OBS_H_PFCP);
}

__noinline int obs_sctp_xdp(struct xdp_md *ctx, struct obs_args *a)
{
	return obs_handle(ctx, 1, 0, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a,
			  OBS_H_SCTP);
}

/*
 * The L2-L4 pass shared by every hook: counts the frame, parses up to the
 * transport header and says which handler (if any) the caller must run.
 * Returns -1 for none.
 */
static __always_inline int obs_l2l4(void *ctx, int xdp, void *data, void *data_end,
				    struct obs_args *a)
{
	struct obs_pkt p;
	int err;

	if (!obs_pkt_init(&p, ctx, xdp, data, data_end, a))
		return -1;
	p.ctr->c[OBS_CTR_PACKETS]++;
	p.ctr->c[OBS_CTR_BYTES] += a->frame_len;
	p.ifslot = a->ifslot = ifslot_of(a->ifindex);

	err = parse_l3_fixed(&p.cur, &a->m);
	if (!err && a->m.family == 6 && parse_ipv6_is_ext(a->m.l4)) {
		err = xdp ? obs_v6ext_xdp(ctx, a) : obs_v6ext_tc(ctx, a);
		/* The helper moved l4_off past the chain; the pointers the
		 * verifier knew are gone with the call. */
		p.cur.off = a->m.l4_off;
	}
	count_iface(&p, l4_class(a->m.family, a->m.l4));
	if (err) {
		count_malformed(&p, err);
		return -1;
	}
	if (!a->m.family) {
		p.ctr->c[OBS_CTR_NON_IP]++;
		return -1;
	}
	if (a->m.frag_first || a->m.frag_later)
		p.ctr->c[a->m.family == 4 ? OBS_CTR_IPV4_FRAGMENTS : OBS_CTR_IPV6_FRAGMENTS]++;
	if (a->m.frag_later) {
		/* No L4 header here; the last fragment may complete a GTP-U
		 * datagram counted on its first (handle_gtpu). */
		if (a->m.frag_last && a->m.family == 4 && a->m.l4 == IPPROTO_UDP)
			return OBS_H_GTPU;
		return -1;
	}

	switch (a->m.l4) {
	case IPPROTO_UDP:
		err = parse_udp(&p.cur, &a->m);
		if (err)
			break;
		if (a->m.sport == OBS_GTPU_PORT || a->m.dport == OBS_GTPU_PORT)
			return OBS_H_GTPU;
		if (a->m.sport == OBS_PFCP_PORT || a->m.dport == OBS_PFCP_PORT)
			return OBS_H_PFCP;
		break;
	case IPPROTO_TCP:
		err = parse_tcp(&p.cur, &a->m);
		break;
	case IPPROTO_SCTP:
		return OBS_H_SCTP;
	case PARSE_IPPROTO_ICMP:
	case PARSE_IPPROTO_ICMPV6:
		parse_icmp_quote(&p.cur, &a->m);
		if (a->m.quoted && (a->m.sport == OBS_PFCP_PORT || a->m.dport == OBS_PFCP_PORT))
			return OBS_H_PFCP;
		return -1;
	}
	count_malformed(&p, err);
	return -1;
}

static __always_inline void obs_skb(struct __sk_buff *skb, __u8 dir)
{
	struct obs_args a = { .dir = dir, .frame_len = skb->len, .ifindex = skb->ifindex };
	__u32 linear;
	int h;

	if (replay_mode) {
		if (skb->cb[0])
			a.frame_len = skb->cb[0];
		a.ts = skb->tstamp;
		a.has_ts = 1;
	}
	/* GRO'd or paged skbs may hold only part of the headers linearly;
	 * direct packet access sees only the linear part. */
	linear = skb->data_end - skb->data;
	if (linear < OBS_PULL_LEN && linear < skb->len)
		bpf_skb_pull_data(skb, skb->len < OBS_PULL_LEN ? skb->len : OBS_PULL_LEN);
	/* Keep clang from reusing ctx+offset registers across the helper call:
	 * the verifier only accepts ctx loads at constant offsets. */
	asm volatile("" : "+r"(skb));
	a.size = skb->data_end - skb->data;
	h = obs_l2l4(skb, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, &a);
	if (h == OBS_H_GTPU)
		obs_gtpu_tc(skb, &a);
	else if (h == OBS_H_PFCP)
		obs_pfcp_tc(skb, &a);
	else if (h == OBS_H_SCTP)
		obs_sctp_tc(skb, &a);
}

SEC("tc")
int obs_tc_ingress(struct __sk_buff *skb)
{
	obs_skb(skb, OBS_DIR_INGRESS);
	return TC_ACT_OK;
}

SEC("tc")
int obs_tc_egress(struct __sk_buff *skb)
{
	obs_skb(skb, OBS_DIR_EGRESS);
	return TC_ACT_OK;
}

SEC("xdp")
int obs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct obs_args a = {
		.dir = OBS_DIR_INGRESS,
		.frame_len = (__u32)(data_end - data),
		.size = (__u32)(data_end - data),
		.ifindex = ctx->ingress_ifindex,
	};
	int h = obs_l2l4(ctx, 1, data, data_end, &a);

	if (h == OBS_H_GTPU)
		obs_gtpu_xdp(ctx, &a);
	else if (h == OBS_H_PFCP)
		obs_pfcp_xdp(ctx, &a);
	else if (h == OBS_H_SCTP)
		obs_sctp_xdp(ctx, &a);
	/* Passive: hand the packet to the next program of the interface's XDP
	 * chain (a policy, a load balancer), or XDP_PASS when there is none. */
	return kagami_xdp_chain_next(ctx);
}

/* obs_gtpu_xdp for obs_replay: the same counting, through the global
 * obs_gtpu_count() (cheaper to verify, dearer per packet). */
__noinline int obs_gtpu_replay(struct xdp_md *ctx, struct obs_args *a)
{
	return obs_handle(ctx, 1, 1, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a,
			  OBS_H_GTPU);
}

/* One frame of a replay batch: what obs_xdp does for a packet. */
__noinline int obs_frame_xdp(struct xdp_md *ctx, struct obs_args *a)
{
	int h;

	if (!a)
		return 0;
	h = obs_l2l4(ctx, 1, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a);
	if (h == OBS_H_GTPU)
		obs_gtpu_replay(ctx, a);
	else if (h == OBS_H_PFCP)
		obs_pfcp_xdp(ctx, a);
	else if (h == OBS_H_SCTP)
		obs_sctp_xdp(ctx, a);
	return 0;
}

/*
 * Replay: a batch of frames per BPF_PROG_TEST_RUN (struct kg_replay_batch,
 * include/modules/obs/abi.h). Never attached by Kagami; a packet without the
 * batch magic passes untouched.
 */
SEC("xdp")
int obs_replay(struct xdp_md *ctx)
{
	struct kg_replay_batch *b = (void *)(long)ctx->data;
	__u32 off = sizeof(*b), count, i, key = OBS_DIR_INGRESS;
	struct obs_counters *ctr;

	if ((void *)(b + 1) > (void *)(long)ctx->data_end || b->magic != KG_REPLAY_MAGIC)
		return XDP_PASS;
	count = b->count;
	for (i = 0; i < KG_REPLAY_MAX_FRAMES; i++) {
		/* Re-read each time: the verifier forgets packet bounds across
		 * a global call. */
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct obs_args a = {};
		struct kg_replay_rec *r;
		__u32 cap;

		if (i >= count)
			return XDP_PASS;
		if (off > KG_REPLAY_MAX_OFF)
			break;
		r = data + (off & KG_REPLAY_MAX_OFF);
		if ((void *)(r + 1) > data_end)
			break;
		cap = r->cap_len;
		a.base = off + sizeof(*r);
		if (!cap || a.base + cap > (__u32)(data_end - data))
			break;
		a.size = cap;
		a.frame_len = r->wire_len ? r->wire_len : cap;
		a.ts = r->ts_ns;
		a.has_ts = 1;
		a.dir = OBS_DIR_INGRESS;
		a.ifindex = ctx->ingress_ifindex;
		obs_frame_xdp(ctx, &a);
		off = a.base + ((cap + 7) & ~7u);
	}
	if (i >= count)
		return XDP_PASS;
	/* A record past the buffer, or more than KG_REPLAY_MAX_FRAMES. */
	ctr = bpf_map_lookup_elem(&obs_counters, &key);
	if (ctr)
		ctr->c[OBS_CTR_REPLAY_BAD_BATCH]++;
	return XDP_PASS;
}
