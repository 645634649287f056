// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * n2: NGAP on N2 (SCTP DATA chunks with PPID 60), counted in the kernel and
 * copied up for NAS-5GS decoding and per-UE records (modules/n2/README.md).
 *
 * A passive observer on TC ingress/egress, chained before obs on the same
 * hook by TC priority (it returns TC_ACT_UNSPEC so that the next filter,
 * obs, still runs). For every DATA chunk of a packet (bundles included)
 * whose PPID is 60 it copies the user data into a per-CPU record
 * (bpf_skb_load_bytes/bpf_xdp_load_bytes: paged skbs work), walks the NGAP
 * PDU there (bpf/lib/ngap.h: PDU type, procedure code, the top-level IEs to
 * the NAS-PDU and the RAN/AMF UE NGAP IDs), counts it by interface,
 * procedure code and PDU type, and outputs the record to the ring.
 *
 * obs_replay already uses all of its 512 bytes of stack: this is a program
 * of its own, with its own replay program (n2_replay: the batch format of
 * include/kagami/abi/replay.h), driven by `kagami replay` beside obs.
 *
 * A DATA chunk carrying part of a message (SCTP fragmentation: B and E not
 * both set) is counted N2_CTR_SPLIT_CHUNKS and not parsed: the kernel keeps
 * no reassembly state (docs/n2.md, "Differences from tshark").
 *
 * No vmlinux.h: only UAPI types and wire formats (as obs).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "modules/n2/abi.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/ngap.h"
#include "lib/parse.h"
#include "lib/replay.h"
#include "lib/sctp.h"
#include "n2_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_UNSPEC (-1)

/* Linear bytes a TC program asks for before parsing the headers. */
#define N2_PULL_LEN 128

/* What the per-chunk helper needs to know of the frame and the chunk. */
struct n2_chunk_args {
	__u64 ts;
	__u32 ifindex;
	__u32 base;      /* frame offset in the buffer: 0 live, the record in a replay batch */
	__u32 data_off;  /* chunk user data, from the frame start */
	__u32 data_len;
	__u32 vtag;
	__u16 stream;
	__u16 sport;
	__u16 dport;
	__u8 dir;
	__u8 family;
	__u8 replay;
	__u8 pad[7];
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline void ctr_add(__u32 c)
{
	percpu_array_add(&n2_ctr, c, 1);
}

static __always_inline void count_err(__u32 e)
{
	if (e > NGAP_OK && e < NGAP_E__MAX)
		percpu_array_add(&n2_err, e, 1);
}

static __always_inline void count_proc(const struct n2_chunk_args *a, const struct ngap_info *ni)
{
	struct n2_proc_key k = {
		.ifindex = a->ifindex, .proc = ni->proc, .pdu_type = ni->pdu_type, .dir = a->dir,
	};
	__u64 one = 1, *v = bpf_map_lookup_elem(&n2_proc, &k);

	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&n2_proc, &k, &one, BPF_NOEXIST);
	ctr_add(N2_CTR_NGAP_PDUS);
}

/* One top-level IE (lib/ngap.h ngap_ie()): a global function, so the
 * verifier checks its body once instead of once per iteration of the walk
 * below. Returns the next IE's offset, or -enum ngap_error. */
__noinline int n2_ie_step(struct n2_msg_event *ev, struct ngap_info *ni, __u32 off, __u32 n)
{
	int err;

	if (!ev || !ni)
		return -NGAP_E_SHORT;
	err = ngap_ie(ev->msg, &off, n, ni);
	if (err)
		return -err;
	return off & 0xffff;
}

/*
 * One NGAP message: copy, walk, count, send. `xdp` is constant per caller.
 * The copy length is bounded by NGAP_COPY_MAX for the helper's size check.
 */
static __always_inline int n2_message(void *ctx, int xdp, const struct n2_chunk_args *a)
{
	struct ngap_info ni = {};
	struct n2_msg_event *ev;
	__u32 k = 0, n = a->data_len, sz, i, off;
	int err, ret, r;

	ev = bpf_map_lookup_elem(&n2_scratch, &k);
	if (!ev)
		return 0;
	if (n > NGAP_COPY_MAX)
		n = NGAP_COPY_MAX;
	if (n == 0) {
		count_err(NGAP_E_SHORT);
		return 0;
	}
	ret = xdp ? bpf_xdp_load_bytes(ctx, a->base + a->data_off, ev->msg, n)
		  : bpf_skb_load_bytes(ctx, a->data_off, ev->msg, n);
	if (ret) {
		count_err(NGAP_E_SHORT);
		return 0;
	}
	err = ngap_head(ev->msg, a->data_len, n, &ni);
	if (err == NGAP_E_SHORT || err == NGAP_E_PDU_EXTENSION) {
		/* No PDU type or procedure: tshark would not count it either. */
		count_err(err);
		return 0;
	}
	count_proc(a, &ni);
	ret = 1;
	if (!err) {
		off = ni.ies_off;
		/* NGAP_MAX_IES: include/kagami/abi/ngap.h says why it suffices. */
		for (i = 0; i < NGAP_MAX_IES; i++) {
			if (i >= ni.ie_count)
				break;
			r = n2_ie_step(ev, &ni, off, n);
			if (r < 0) {
				err = -r;
				break;
			}
			off = r;
		}
		if (!err)
			err = ngap_walk_end(&ni, i, off);
	}
	count_err(err);
	if (ni.has_nas)
		ctr_add(N2_CTR_NGAP_WITH_NAS);

	ev->ts_ns = a->ts;
	ev->amf_ue_id = ni.amf_ue_id;
	ev->ifindex = a->ifindex;
	ev->ran_ue_id = ni.ran_ue_id;
	ev->msg_len = a->data_len;
	ev->copied = n;
	ev->nas_off = ni.nas_off;
	ev->nas_len = ni.nas_len;
	ev->stream = a->stream;
	ev->vtag = a->vtag;
	ev->pdu_type = ni.pdu_type;
	ev->proc = ni.proc;
	ev->dir = a->dir;
	ev->flags = (ni.has_ran ? N2_F_RAN : 0) | (ni.has_amf ? N2_F_AMF : 0) |
		    (ni.has_nas ? N2_F_NAS : 0) | (a->data_len > n ? N2_F_TRUNCATED : 0) |
		    (a->replay ? N2_F_REPLAY : 0);
	ev->err = err;
	ev->family = a->family;
	ev->sport = a->sport;
	ev->dport = a->dport;
	__builtin_memcpy(ev->saddr, a->saddr, 16);
	__builtin_memcpy(ev->daddr, a->daddr, 16);
	sz = N2_EVENT_FIXED + n;
	if (sz > sizeof(*ev))
		sz = sizeof(*ev);
	ev->hdr.kind = N2_EVENT_NGAP;
	ev->hdr.flags = 0;
	ev->hdr.len = sz;
	ev->hdr.mono_ns = a->replay ? a->ts : bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&n2_events, ev, sz, 0))
		kg_drop(&n2_drops, KG_DROP_RING_FULL);
	else
		ctr_add(N2_CTR_EVENTS);
	return ret;
}

/*
 * One PFCP session message (UDP payload at a->data_off, a->data_len bytes):
 * copied up whole (<= NGAP_COPY_MAX; PFCP session messages of one PDU
 * session are a few hundred bytes) for the userspace join. Nothing is
 * parsed here: the kernel side of PFCP is obs's; n2 only needs the IEs
 * once per session, in userspace.
 */
static __always_inline void n2_pfcp(void *ctx, int xdp, const struct n2_chunk_args *a)
{
	struct n2_msg_event *ev;
	__u32 k = 0, n = a->data_len, sz;
	int ret;

	ev = bpf_map_lookup_elem(&n2_scratch, &k);
	if (!ev)
		return;
	if (n > NGAP_COPY_MAX)
		n = NGAP_COPY_MAX;
	if (n < 2)
		return;
	ret = xdp ? bpf_xdp_load_bytes(ctx, a->base + a->data_off, ev->msg, n)
		  : bpf_skb_load_bytes(ctx, a->data_off, ev->msg, n);
	if (ret)
		return;
	if (ev->msg[1] < N2_PFCP_FIRST || ev->msg[1] > N2_PFCP_LAST)
		return;
	__builtin_memset(ev, 0, N2_EVENT_FIXED);
	ev->ts_ns = a->ts;
	ev->ifindex = a->ifindex;
	ev->msg_len = a->data_len;
	ev->copied = n;
	ev->dir = a->dir;
	ev->flags = (a->data_len > n ? N2_F_TRUNCATED : 0) | (a->replay ? N2_F_REPLAY : 0);
	ev->family = a->family;
	ev->sport = a->sport;
	ev->dport = a->dport;
	__builtin_memcpy(ev->saddr, a->saddr, 16);
	__builtin_memcpy(ev->daddr, a->daddr, 16);
	sz = N2_EVENT_FIXED + n;
	if (sz > sizeof(*ev))
		sz = sizeof(*ev);
	ev->hdr.kind = N2_EVENT_PFCP;
	ev->hdr.len = sz;
	ev->hdr.mono_ns = a->replay ? a->ts : bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&n2_events, ev, sz, 0))
		kg_drop(&n2_drops, KG_DROP_RING_FULL);
	else
		ctr_add(N2_CTR_PFCP_COPIED);
}

/* Global helpers (one verification each, whatever path reaches them). */
__noinline int n2_pfcp_tc(struct __sk_buff *skb, const struct n2_chunk_args *a)
{
	if (!a)
		return 0;
	n2_pfcp(skb, 0, a);
	return 0;
}

__noinline int n2_pfcp_xdp(struct xdp_md *ctx, const struct n2_chunk_args *a)
{
	if (!a)
		return 0;
	n2_pfcp(ctx, 1, a);
	return 0;
}

__noinline int n2_message_tc(struct __sk_buff *skb, const struct n2_chunk_args *a)
{
	if (!a)
		return 0;
	return n2_message(skb, 0, a);
}

__noinline int n2_message_xdp(struct xdp_md *ctx, const struct n2_chunk_args *a)
{
	if (!a)
		return 0;
	return n2_message(ctx, 1, a);
}

/*
 * The SCTP chunks of one frame whose L3 headers are parsed (m). A global
 * helper as well: the chunk loop's states stay out of the callers'.
 */
static __always_inline int n2_chunks(void *ctx, int xdp, struct cursor *c, const struct l3l4 *m,
				     struct n2_chunk_args *a)
{
	struct sctp_common s;
	struct sctp_chunk_info ci = {};
	__u32 off, i;
	int err, ngap = 0;

	c->off = m->l4_off;
	err = sctp_parse_common(c, &s);
	if (err) {
		ctr_add(N2_CTR_SCTP_TRUNCATED);
		return 0;
	}
	ctr_add(N2_CTR_SCTP_PACKETS);
	a->vtag = s.vtag;
	a->sport = s.sport;
	a->dport = s.dport;
	off = c->off;
	/* SCTP_MAX_CHUNKS (lib/sctp.h says why it suffices); the extra
	 * iteration tells "exactly the bound" from "more than the bound". */
	for (i = 0; i <= SCTP_MAX_CHUNKS; i++) {
		if (!cur_widen(&off) || off >= m->l4_end)
			break;
		if (i == SCTP_MAX_CHUNKS) {
			ctr_add(N2_CTR_TOO_MANY_CHUNKS);
			break;
		}
		err = sctp_chunk_at(c, off, m->l4_end, &ci);
		if (err == KG_PERR_SCTP_CHUNK_BAD_LENGTH) {
			ctr_add(N2_CTR_CHUNK_BAD_LENGTH);
			break;
		}
		if (err) {
			ctr_add(N2_CTR_CHUNK_PAST_END);
			break;
		}
		if (ci.type == SCTP_CHUNK_DATA) {
			ctr_add(N2_CTR_DATA_CHUNKS);
			if (ci.ppid == NGAP_SCTP_PPID) {
				__u8 *sid = cur_ptr(c, off + 8, 2);

				ctr_add(N2_CTR_NGAP_CHUNKS);
				if ((ci.flags & 3) != 3) {
					ctr_add(N2_CTR_SPLIT_CHUNKS);
				} else {
					a->stream = sid ? be16_at(sid) : 0;
					a->data_off = ci.data_off;
					a->data_len = ci.data_len;
					if (xdp)
						ngap |= n2_message_xdp(ctx, a);
					else
						ngap |= n2_message_tc(ctx, a);
				}
			}
		}
		off = ci.next_off;
	}
	if (ngap)
		ctr_add(N2_CTR_NGAP_FRAMES);
	return 0;
}

/* Parses L2/L3 of the frame at base..base+size and walks SCTP. */
/* Returns 1 when the frame is SCTP but only `size` of its `full` bytes
 * are linear: the TC caller pulls it whole and calls again. */
static __always_inline int n2_frame(void *ctx, int xdp, void *data, void *data_end,
				    struct n2_chunk_args *a, __u32 size, __u32 full)
{
	struct cursor c;
	struct l3l4 m = {};
	int err;

	c.data = data + (a->base & KG_REPLAY_MAX_OFF);
	c.data_end = data_end;
	c.off = 0;
	c.size = size;
	err = parse_l3(&c, &m);
	if (err) {
		ctr_add(N2_CTR_L3_MALFORMED);
		return 0;
	}
	if (!m.family || m.frag_later)
		return 0;
	if (m.l4 == IPPROTO_UDP) {
		/* PFCP (N4) for the 5G context join: the UDP header is in the
		 * pulled head; the payload is copied with load_bytes. */
		if (parse_udp(&c, &m) || (m.sport != N2_PFCP_PORT && m.dport != N2_PFCP_PORT))
			return 0;
		if (m.l4_end < m.payload_off + 2 || m.udp_len < 10)
			return 0;
		a->family = m.family;
		__builtin_memcpy(a->saddr, m.saddr, 16);
		__builtin_memcpy(a->daddr, m.daddr, 16);
		a->sport = m.sport;
		a->dport = m.dport;
		a->data_off = m.payload_off;
		a->data_len = m.udp_len - 8;
		if (a->data_len > m.l4_end - m.payload_off)
			a->data_len = m.l4_end - m.payload_off;
		/* A replayed frame cut short: copy what was captured. */
		if (full > m.payload_off && a->data_len > full - m.payload_off)
			a->data_len = full - m.payload_off;
		if (xdp)
			n2_pfcp_xdp(ctx, a);
		else
			n2_pfcp_tc(ctx, a);
		return 0;
	}
	if (m.l4 != IPPROTO_SCTP)
		return 0;
	if (size < full)
		return 1;
	a->family = m.family;
	__builtin_memcpy(a->saddr, m.saddr, 16);
	__builtin_memcpy(a->daddr, m.daddr, 16);
	return n2_chunks(ctx, xdp, &c, &m, a);
}

__noinline int n2_frame_tc(struct __sk_buff *skb, struct n2_chunk_args *a)
{
	if (!a)
		return 0;
	ctr_add(N2_CTR_FRAMES);
	if (n2_frame(skb, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, a,
		     skb->data_end - skb->data, skb->len) != 1)
		return 0;
	/* SCTP signalling is small: make this packet linear as a whole, so the
	 * chunk walk reads every chunk header in place. */
	if (skb->len > 0xffff || bpf_skb_pull_data(skb, skb->len))
		return 0;
	n2_frame(skb, 0, (void *)(long)skb->data, (void *)(long)skb->data_end, a,
		 skb->data_end - skb->data, skb->data_end - skb->data);
	return 0;
}

__noinline int n2_frame_xdp(struct xdp_md *ctx, struct n2_chunk_args *a, __u32 size)
{
	if (!a)
		return 0;
	ctr_add(N2_CTR_FRAMES);
	n2_frame(ctx, 1, (void *)(long)ctx->data, (void *)(long)ctx->data_end, a, size, size);
	return 0;
}

static __always_inline void n2_skb(struct __sk_buff *skb, __u8 dir)
{
	struct n2_chunk_args a = { .dir = dir, .ifindex = skb->ifindex };
	__u32 linear;

	/* Headers first; n2_frame_tc() pulls an SCTP packet whole. */
	linear = skb->data_end - skb->data;
	if (linear < N2_PULL_LEN && linear < skb->len)
		bpf_skb_pull_data(skb, skb->len < N2_PULL_LEN ? skb->len : N2_PULL_LEN);
	asm volatile("" : "+r"(skb));
	a.ts = bpf_ktime_get_ns();
	n2_frame_tc(skb, &a);
}

SEC("tc")
int n2_tc_ingress(struct __sk_buff *skb)
{
	n2_skb(skb, N2_DIR_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int n2_tc_egress(struct __sk_buff *skb)
{
	n2_skb(skb, N2_DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

/*
 * Replay: a batch of frames per BPF_PROG_TEST_RUN (struct kg_replay_batch,
 * walked by lib/replay.h as obs_replay and sbi_replay). Never attached; a
 * buffer without the magic passes.
 */
SEC("xdp")
int n2_replay(struct xdp_md *ctx)
{
	__u32 off = KG_REPLAY_FIRST, count, i;

	if (kg_replay_batch(ctx, &count))
		return XDP_PASS;
	/* KG_REPLAY_MAX_FRAMES: the batch format's own bound. */
	for (i = 0; i < KG_REPLAY_MAX_FRAMES; i++) {
		struct kg_replay_frame f;
		struct n2_chunk_args a = {};

		if (i >= count)
			return XDP_PASS;
		if (kg_replay_next(ctx, &off, &f))
			break;
		a.base = f.base;
		a.ts = f.ts_ns;
		a.dir = N2_DIR_INGRESS;
		a.ifindex = ctx->ingress_ifindex;
		a.replay = 1;
		n2_frame_xdp(ctx, &a, f.cap);
	}
	if (i >= count)
		return XDP_PASS;
	ctr_add(N2_CTR_REPLAY_BAD_BATCH);
	return XDP_PASS;
}
