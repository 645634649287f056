// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test program for load errors: a hash map of 2^31 entries, which the
 * kernel refuses to create (E2BIG). The error must name the map, not the
 * program (pm_load_test, BigMapErrorNamesTheMap).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1u << 31);
	__type(key, __u64);
	__type(value, __u64);
} big SEC(".maps");

SEC("raw_tp/sys_enter")
int big_tp(void *ctx)
{
	__u64 k = 0;
	__u64 *v = bpf_map_lookup_elem(&big, &k);

	if (v)
		*v += 1;
	return 0;
}
