// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test program for the program manager: counts IPv4 UDP packets per
 * destination port, at TC and at XDP. Built in variants (bpf/CMakeLists.txt):
 *   count_v1, count_v2   identical map layout, different code (COUNT_VERSION)
 *   count_v3             `counts` value grows to {packets, bytes} (Extend)
 *   count_small          `counts` holds only 4 entries (map-full migration)
 * `version` records which variant last saw a packet, so a test can tell
 * which one runs after a replace.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800 /* uapi if_ether.h: not in vmlinux.h (a #define) */
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef COUNT_VERSION
#define COUNT_VERSION 1
#endif
#ifndef COUNT_MAX
#define COUNT_MAX 1024
#endif

#ifdef COUNT_V3
struct count_value {
	__u64 packets;
	__u64 bytes;
};
#else
struct count_value {
	__u64 packets;
};
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, COUNT_MAX);
	__type(key, __u32);
	__type(value, struct count_value);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} version SEC(".maps");

/* Returns the UDP destination port of an IPv4 packet, or 0. */
static __always_inline __u32 udp_dport(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	return bpf_ntohs(udp->dest);
}

static __always_inline void count(__u32 port, __u64 len)
{
	struct count_value *v, init = {};
	__u32 zero = 0, ver = COUNT_VERSION;

	if (!port)
		return;
	bpf_map_update_elem(&version, &zero, &ver, BPF_ANY);
	v = bpf_map_lookup_elem(&counts, &port);
	if (!v) {
		/* BPF_NOEXIST: a concurrent CPU may have inserted it first. */
		bpf_map_update_elem(&counts, &port, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &port);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->packets, 1);
#ifdef COUNT_V3
	__sync_fetch_and_add(&v->bytes, len);
#endif
}

SEC("tc")
int count_tc(struct __sk_buff *skb)
{
	count(udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end), skb->len);
	return -1; /* TC_ACT_UNSPEC: let lower-priority filters run too */
}

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	count(udp_dport(data, end), end - data);
	return XDP_PASS;
}
