// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Chain-aware XDP test program: counts IPv4 UDP packets to any port, drops
 * those whose destination port equals cfg[0] (0 = drop nothing), and passes
 * the rest down the XDP chain. Two instances on one interface show both the
 * chain (both count) and its order (a drop in the first hides the packet
 * from the second).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800 /* uapi if_ether.h: not in vmlinux.h (a #define) */
#endif
#include "lib/xdp_chain.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

SEC("xdp")
int chain_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 zero = 0, *drop;
	__u64 *n;

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return kagami_xdp_chain_next(ctx);
	n = bpf_map_lookup_elem(&packets, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	drop = bpf_map_lookup_elem(&cfg, &zero);
	if (drop && *drop && *drop == bpf_ntohs(udp->dest))
		return XDP_DROP;
	return kagami_xdp_chain_next(ctx);
}
