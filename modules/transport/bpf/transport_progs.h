/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The transport programs, one per hook. Compiled twice (xdp-filter style):
 *   transport.bpf.c     TRANSPORT_TP_BTF=1: BTF-typed raw tracepoints
 *                       (tp_btf/...), arguments read straight from the
 *                       tracepoint's prototype, no ring-buffer record built;
 *   transport_tp.bpf.c  TRANSPORT_TP_BTF=0: classic tracepoints
 *                       (tracepoint/<category>/<name>), for kernels where
 *                       tp_btf is refused; the socket and skb pointers come
 *                       from the event's skaddr/skbaddr fields.
 * Two objects rather than one with autoload switches because the program
 * manager loads every program of an object: a tp_btf program the kernel
 * rejects would fail the whole load. The cgroup_skb programs are identical
 * in both and need neither.
 *
 * Arguments that only newer kernels pass (kfree_skb's rx_sk,
 * tcp_retransmit_skb's err; both present on 6.18) are read only when the running kernel's
 * trace_event_raw_* struct has the matching field: the CO-RE check turns into
 * a constant and the verifier never sees the out-of-range ctx access.
 */
#ifndef KAGAMI_BPF_TRANSPORT_PROGS_H
#define KAGAMI_BPF_TRANSPORT_PROGS_H

#include "transport_count.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- per-cgroup packets/bytes: cgroup_skb on the cgroup v2 root ------- */

/* L4 class of a packet at the socket layer: the socket's protocol when it is
 * a full socket, else (request/timewait mini sockets answering SYNs or
 * FINs, no socket at all) the IP header's. cgroup_skb data starts at the
 * network header. */
static __always_inline __u8 cg_skb_l4(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u8 proto = 0;

	if (sk) {
		sk = bpf_sk_fullsock(sk);
		if (sk)
			return l4_class(sk->protocol);
	}
	if (skb->protocol == bpf_htons(TRANSPORT_ETH_P_IP))
		bpf_skb_load_bytes(skb, 9, &proto, 1);
	else if (skb->protocol == bpf_htons(TRANSPORT_ETH_P_IPV6))
		bpf_skb_load_bytes(skb, 6, &proto, 1);
	return l4_class(proto);
}

static __always_inline int count_cg_skb(struct __sk_buff *skb, int dir)
{
	struct transport_traffic *t;
	__u32 segs = skb->gso_segs;
	__u8 l4 = cg_skb_l4(skb);

	t = traffic_slot(bpf_skb_cgroup_id(skb));
	if (!t)
		return 1;
	/* One skb can carry many wire packets (GSO on egress, GRO on
	 * ingress); gso_segs is 0 for a plain skb. The bounds check on l4
	 * and dir is for the verifier: both come from constants above. */
	if (dir < TRANSPORT_DIR_MAX && l4 < TRANSPORT_L4_MAX) {
		__sync_fetch_and_add(&t->packets[dir][l4], segs ? segs : 1);
		__sync_fetch_and_add(&t->bytes[dir][l4], skb->len);
	}
	return 1; /* observe only: always allow */
}

SEC("cgroup_skb/ingress")
int transport_cg_ingress(struct __sk_buff *skb)
{
	hook_ran(TRANSPORT_HOOK_CG_INGRESS);
	return count_cg_skb(skb, TRANSPORT_DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int transport_cg_egress(struct __sk_buff *skb)
{
	hook_ran(TRANSPORT_HOOK_CG_EGRESS);
	return count_cg_skb(skb, TRANSPORT_DIR_EGRESS);
}

#if TRANSPORT_TP_BTF
/* ---- tp_btf variant ---------------------------------------------------- */

SEC("tp_btf/kfree_skb")
int BPF_PROG(transport_kfree_skb, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	const struct sock *rx_sk = NULL;

	hook_ran(TRANSPORT_HOOK_KFREE_SKB);
	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, rx_sk))
		rx_sk = (const struct sock *)ctx[3];
	count_drop(skb, reason, rx_sk);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(transport_tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	int err = 0;

	hook_ran(TRANSPORT_HOOK_RETRANSMIT);
	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err))
		err = (int)ctx[2];
	count_retransmit(sk, skb, err);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(transport_tcp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct transport_tcp *t;

	hook_ran(TRANSPORT_HOOK_SEND_RESET);
	/* sk is NULL for a reset answering a segment that matched no socket
	 * (a closed port): counted for cgroup 0, the node itself. */
	t = tcp_slot(sk_cgroup_id(sk));
	if (t)
		__sync_fetch_and_add(&t->resets_sent, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(transport_tcp_receive_reset, struct sock *sk)
{
	struct transport_tcp *t;

	hook_ran(TRANSPORT_HOOK_RECV_RESET);
	t = tcp_slot(sk_cgroup_id(sk));
	if (t)
		__sync_fetch_and_add(&t->resets_received, 1);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(transport_sock_set_state, const struct sock *sk, const int oldstate,
	     const int newstate)
{
	hook_ran(TRANSPORT_HOOK_SET_STATE);
	if (sk_protocol(sk) != TRANSPORT_IPPROTO_TCP)
		return 0;
	count_tcp_state(sk, oldstate, newstate);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(transport_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	hook_ran(TRANSPORT_HOOK_TCP_PROBE);
	/* tcp_sock.srtt_us holds 8 x the smoothed RTT (RFC 6298 fixed point). */
	count_rtt(sk, BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3);
	return 0;
}

#else
/* ---- classic tracepoint variant ---------------------------------------- */

SEC("tracepoint/skb/kfree_skb")
int transport_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	const struct sock *rx_sk = NULL;
	__u32 reason = 0;

	hook_ran(TRANSPORT_HOOK_KFREE_SKB);
	if (bpf_core_field_exists(ctx->rx_sk))
		rx_sk = BPF_CORE_READ(ctx, rx_sk);
	if (bpf_core_field_exists(ctx->reason))
		reason = BPF_CORE_READ(ctx, reason);
	else
		return 0; /* before 5.17: no reasons, every free looked alike */
	count_drop(BPF_CORE_READ(ctx, skbaddr), reason, rx_sk);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int transport_tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	int err = 0;

	hook_ran(TRANSPORT_HOOK_RETRANSMIT);
	if (bpf_core_field_exists(ctx->err))
		err = BPF_CORE_READ(ctx, err);
	count_retransmit(BPF_CORE_READ(ctx, skaddr), BPF_CORE_READ(ctx, skbaddr), err);
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int transport_tcp_send_reset(struct trace_event_raw_tcp_send_reset *ctx)
{
	struct transport_tcp *t;

	hook_ran(TRANSPORT_HOOK_SEND_RESET);
	t = tcp_slot(sk_cgroup_id(BPF_CORE_READ(ctx, skaddr)));
	if (t)
		__sync_fetch_and_add(&t->resets_sent, 1);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int transport_tcp_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct transport_tcp *t;

	hook_ran(TRANSPORT_HOOK_RECV_RESET);
	t = tcp_slot(sk_cgroup_id(BPF_CORE_READ(ctx, skaddr)));
	if (t)
		__sync_fetch_and_add(&t->resets_received, 1);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int transport_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	hook_ran(TRANSPORT_HOOK_SET_STATE);
	if (BPF_CORE_READ(ctx, protocol) != TRANSPORT_IPPROTO_TCP)
		return 0;
	count_tcp_state(BPF_CORE_READ(ctx, skaddr), BPF_CORE_READ(ctx, oldstate),
			BPF_CORE_READ(ctx, newstate));
	return 0;
}

SEC("tracepoint/tcp/tcp_probe")
int transport_tcp_probe(struct trace_event_raw_tcp_probe *ctx)
{
	const struct sock *sk = NULL;

	hook_ran(TRANSPORT_HOOK_TCP_PROBE);
	/* Older kernels' event has no skaddr: then RTT stays unattributed
	 * (cgroup 0) rather than being guessed from the interrupted task. The
	 * event's srtt is already tp->srtt_us >> 3, in microseconds. */
	if (bpf_core_field_exists(ctx->skaddr))
		sk = BPF_CORE_READ(ctx, skaddr);
	count_rtt(sk, BPF_CORE_READ(ctx, srtt));
	return 0;
}
#endif

#endif /* KAGAMI_BPF_TRANSPORT_PROGS_H */
