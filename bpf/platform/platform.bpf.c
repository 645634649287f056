// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Platform programs: the empty baselines every packet module's cost is
 * measured against (docs/performance.md).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Baseline: the cheapest possible XDP program. */
SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Baseline: the cheapest possible TC program. TC_ACT_OK == 0. */
SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return 0;
}
