// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Example custom program (README): count packets per IP protocol at XDP.
 *
 *   clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 \
 *     -I bpf/include/vmlinux/x86 -I bpf -c examples/xdp_counter.bpf.c -o xdp_counter.bpf.o
 *   kagami prog load xdp_counter.bpf.o --name xdp-counter --attach xdp:eth0
 *   bpftool map dump pinned /sys/fs/bpf/kagami/xdp-counter/maps/proto_packets
 *
 * It is chain-aware (lib/xdp_chain.h), so it can share the interface with
 * other Kagami XDP programs; it passes every packet on.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800 /* uapi if_ether.h: not in vmlinux.h (a #define) */
#endif
#include "lib/xdp_chain.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* key: IP protocol number (0-255); per-CPU so counting needs no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_packets SEC(".maps");

SEC("xdp")
int xdp_counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 proto;
	__u64 *n;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return kagami_xdp_chain_next(ctx);
	proto = ip->protocol;
	n = bpf_map_lookup_elem(&proto_packets, &proto);
	if (n)
		*n += 1;
	return kagami_xdp_chain_next(ctx);
}
