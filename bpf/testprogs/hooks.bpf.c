// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One trivial program per non-packet hook kind, so the manager's attach paths
 * (tracepoint, raw_tp, tp_btf, cgroup, sockops, sk_msg, uprobe) are exercised
 * on the real kernel. Each counts its invocations in `hits[kind]`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum { H_TP, H_RAW, H_BTF, H_CONNECT4, H_SOCKOPS, H_SKMSG, H_UPROBE, H_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, H_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

static __always_inline void hit(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int hook_tp(void *ctx)
{
	hit(H_TP);
	return 0;
}

SEC("raw_tp/sys_enter")
int hook_raw(void *ctx)
{
	hit(H_RAW);
	return 0;
}

SEC("tp_btf/sys_enter")
int hook_btf(void *ctx)
{
	hit(H_BTF);
	return 0;
}

SEC("cgroup/connect4")
int hook_connect4(struct bpf_sock_addr *ctx)
{
	hit(H_CONNECT4);
	return 1;
}

SEC("sockops")
int hook_sockops(struct bpf_sock_ops *ops)
{
	hit(H_SOCKOPS);
	return 1;
}

SEC("sk_msg")
int hook_skmsg(struct sk_msg_md *msg)
{
	hit(H_SKMSG);
	return SK_PASS;
}

SEC("uprobe")
int hook_uprobe(void *ctx)
{
	hit(H_UPROBE);
	return 0;
}
