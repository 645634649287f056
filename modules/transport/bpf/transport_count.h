/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counting helpers shared by both hook variants of the transport programs.
 *
 * Contract: every helper takes kernel pointers (struct sock *, struct
 * sk_buff *) that may come from a tp_btf argument or from a classic
 * tracepoint's skaddr/skbaddr field, and reads through them only with
 * BPF_CORE_READ (bpf_probe_read_kernel + CO-RE), which is valid for both.
 * A NULL or stale pointer yields zeros, never a fault.
 *
 * Attribution: tracepoints in the receive path run in softirq context, where
 * bpf_get_current_cgroup_id() names whatever task the softirq interrupted.
 * The socket's own cgroup (sk->sk_cgrp_data, set when the socket was created
 * and inherited by accepted children) is the only correct owner, so every
 * counter here is keyed by it.
 */
#ifndef KAGAMI_BPF_TRANSPORT_COUNT_H
#define KAGAMI_BPF_TRANSPORT_COUNT_H

#include "transport_maps.h"
#include "lib/counters.h"	/* log2_u64 */

#define TRANSPORT_ETH_P_IP 0x0800
#define TRANSPORT_ETH_P_IPV6 0x86DD
#define TRANSPORT_IPPROTO_TCP 6
#define TRANSPORT_IPPROTO_UDP 17
#define TRANSPORT_IPPROTO_SCTP 132
#define TRANSPORT_E2BIG 7
#define TRANSPORT_EEXIST 17

static __always_inline void hook_ran(__u32 hook)
{
	__u64 *n = bpf_map_lookup_elem(&trn_hook_runs, &hook);

	if (n)
		*n += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline __u8 l4_class(__u32 ipproto)
{
	switch (ipproto) {
	case TRANSPORT_IPPROTO_TCP:
		return TRANSPORT_L4_TCP;
	case TRANSPORT_IPPROTO_UDP:
		return TRANSPORT_L4_UDP;
	case TRANSPORT_IPPROTO_SCTP:
		return TRANSPORT_L4_SCTP;
	default:
		return TRANSPORT_L4_OTHER;
	}
}

/* cgroup v2 id of a socket's owner. Request sockets (SYN received, handshake
 * not done) have no sk_cgrp_data: their listener's cgroup is the one the
 * accepted socket will inherit. Timewait sockets have none either and no
 * link back to a full socket, so they are unattributed (0). */
static __always_inline __u64 sk_cgroup_id(const struct sock *sk)
{
	__u8 state;

	if (!sk)
		return 0;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_TIME_WAIT)
		return 0;
	if (state == TCP_NEW_SYN_RECV) {
		sk = BPF_CORE_READ((struct request_sock *)sk, __req_common.skc_listener);
		if (!sk)
			return 0;
	}
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline void count_folded(__u32 fold)
{
	__u64 *n = bpf_map_lookup_elem(&trn_overflow, &fold);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The counters of one cgroup in a per-key map, or the map's other_* slot
 * when the map is full. NULL only if the maps themselves are unusable. */
static __always_inline struct transport_tcp *tcp_slot(__u64 cgroup_id)
{
	struct transport_cg_key key = { .cgroup_id = cgroup_id };
	struct transport_tcp zero = {};
	struct transport_tcp *v;
	__u32 zero_idx = 0;
	long err;

	v = bpf_map_lookup_elem(&trn_pod_tcp, &key);
	if (v)
		return v;
	err = bpf_map_update_elem(&trn_pod_tcp, &key, &zero, BPF_NOEXIST);
	if (err == 0 || err == -TRANSPORT_EEXIST) {
		v = bpf_map_lookup_elem(&trn_pod_tcp, &key);
		if (v)
			return v;
	}
	count_folded(TRANSPORT_FOLD_TCP);
	return bpf_map_lookup_elem(&trn_oth_tcp, &zero_idx);
}

static __always_inline struct transport_traffic *traffic_slot(__u64 cgroup_id)
{
	struct transport_cg_key key = { .cgroup_id = cgroup_id };
	struct transport_traffic zero = {};
	struct transport_traffic *v;
	__u32 zero_idx = 0;
	long err;

	v = bpf_map_lookup_elem(&trn_pod_traffic, &key);
	if (v)
		return v;
	err = bpf_map_update_elem(&trn_pod_traffic, &key, &zero, BPF_NOEXIST);
	if (err == 0 || err == -TRANSPORT_EEXIST) {
		v = bpf_map_lookup_elem(&trn_pod_traffic, &key);
		if (v)
			return v;
	}
	count_folded(TRANSPORT_FOLD_TRAFFIC);
	return bpf_map_lookup_elem(&trn_oth_traffic, &zero_idx);
}

/* Adds one event to a u64-valued hash map, folding when the map is full. */
static __always_inline void count_event(void *map, const void *key, __u32 fold)
{
	__u64 one = 1, *v;
	long err;

	v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	err = bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -TRANSPORT_EEXIST) { /* another CPU inserted it first */
		v = bpf_map_lookup_elem(map, key);
		if (v) {
			__sync_fetch_and_add(v, 1);
			return;
		}
	}
	count_folded(fold);
}

static __always_inline void count_rtt(const struct sock *sk, __u32 srtt_us)
{
	struct transport_tcp *t;
	__u32 b;

	if (!srtt_us) /* no RTT sample yet (e.g. first segment after SYN cookies) */
		return;
	t = tcp_slot(sk_cgroup_id(sk));
	if (!t)
		return;
	b = log2_u64(srtt_us);
	if (b >= TRANSPORT_RTT_BUCKETS)
		b = TRANSPORT_RTT_BUCKETS - 1;
	__sync_fetch_and_add(&t->rtt_samples, 1);
	__sync_fetch_and_add(&t->rtt_sum_us, srtt_us);
	__sync_fetch_and_add(&t->rtt_hist[b], 1);
}

static __always_inline void count_tcp_state(const struct sock *sk, int oldstate, int newstate)
{
	struct transport_state_key key = {};

	if (oldstate < 0 || oldstate >= TRANSPORT_TCP_STATE_MAX)
		oldstate = TRANSPORT_TCP_STATE_MAX - 1;
	if (newstate < 0 || newstate >= TRANSPORT_TCP_STATE_MAX)
		newstate = TRANSPORT_TCP_STATE_MAX - 1;
	key.cgroup_id = sk_cgroup_id(sk);
	key.old_state = oldstate;
	key.new_state = newstate;
	count_event(&trn_tcp_state, &key, TRANSPORT_FOLD_STATE);
}

/* L4 class of a dropped skb, from its network header. At drop time the
 * header may not have been parsed yet (drops in the device layer), so the
 * IP version nibble is checked before the protocol byte is trusted. IPv6
 * extension headers are not walked: such drops count as "other". */
static __always_inline __u8 skb_l4(const struct sk_buff *skb, __u16 eth_proto)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 hdr[10] = {};

	if (!head || nh == (__u16)~0U)
		return TRANSPORT_L4_OTHER;
	if (bpf_probe_read_kernel(hdr, sizeof(hdr), head + nh))
		return TRANSPORT_L4_OTHER;
	if (eth_proto == TRANSPORT_ETH_P_IP && (hdr[0] >> 4) == 4)
		return l4_class(hdr[9]);
	if (eth_proto == TRANSPORT_ETH_P_IPV6 && (hdr[0] >> 4) == 6)
		return l4_class(hdr[6]);
	return TRANSPORT_L4_OTHER;
}

static __always_inline int is_drop(__u32 reason)
{
	/* SKB_NOT_DROPPED_YET is 0 on every kernel with reasons; SKB_CONSUMED
	 * (newer kernels) normally goes to the consume_skb tracepoint, but skip it
	 * here too, by its value on the running kernel. */
	if (reason == 0)
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	return 1;
}

static __always_inline void count_drop(const struct sk_buff *skb, __u32 reason,
				       const struct sock *rx_sk)
{
	struct transport_drop_key key = {};
	struct net_device *dev;
	const struct sock *sk = rx_sk;
	__u16 proto;

	if (!is_drop(reason))
		return;
	if (!sk)
		sk = BPF_CORE_READ(skb, sk);
	key.cgroup_id = sk_cgroup_id(sk);
	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		key.ifindex = BPF_CORE_READ(dev, ifindex);
		key.netns_ino = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	key.reason = reason;
	proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	key.l4 = skb_l4(skb, proto);
	count_event(&trn_drops, &key, TRANSPORT_FOLD_DROP);
}

/* Counts one retransmission the way the kernel's own counters do
 * (tcpi_total_retrans, RetransSegs in `netstat -s`): by segments
 * (tcp_skb_pcount, a TSO skb carries several), and for every attempt that
 * got past __tcp_retransmit_skb's early checks. Newer kernels fire the
 * tracepoint for those early bail-outs too, with the errors below; an error
 * from the transmit itself (a local qdisc or device drop) still counts, as
 * it does in the kernel's counters. */
static __always_inline void count_retransmit(const struct sock *sk, const struct sk_buff *skb, int err)
{
	struct transport_tcp *t;
	__u16 segs;

	if (err == -16 /* EBUSY: still in the host queue */ || err == -11 /* EAGAIN */ ||
	    err == -12 /* ENOMEM */ || err == -22 /* EINVAL */)
		return;
	segs = BPF_CORE_READ((struct tcp_skb_cb *)&skb->cb[0], tcp_gso_segs);
	t = tcp_slot(sk_cgroup_id(sk));
	if (t)
		__sync_fetch_and_add(&t->retransmits, segs ? segs : 1);
}

static __always_inline __u16 sk_protocol(const struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
}

#endif /* KAGAMI_BPF_TRANSPORT_COUNT_H */
