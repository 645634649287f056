// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test program for the crash-consistency test (tests/integration/
 * agent_crash_test.cc): one program per hook kind the test kills the agent
 * around (XDP link, TC filter, raw_tp link). The names start with "kcrash_"
 * so the test can find every copy in the kernel and check that each one is
 * listed by the agent. Variants kcrash_v1/kcrash_v2 differ only in
 * KCRASH_VERSION (same map layout), for a replace.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef KCRASH_VERSION
#define KCRASH_VERSION 1
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kcrash_hits SEC(".maps");

static __always_inline void hit(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&kcrash_hits, &k);

	if (v)
		__sync_fetch_and_add(v, KCRASH_VERSION);
}

SEC("xdp")
int kcrash_xdp(struct xdp_md *ctx)
{
	hit();
	return XDP_PASS;
}

SEC("tc")
int kcrash_tc(struct __sk_buff *skb)
{
	hit();
	return -1; /* TC_ACT_UNSPEC: later filters still run */
}

SEC("raw_tp/sys_enter")
int kcrash_raw_tp(void *ctx)
{
	hit();
	return 0;
}
